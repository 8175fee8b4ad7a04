#include "ssm/core.hpp"

#include <Eigen/Eigenvalues>
#include <cstdio>
#include <fstream>
#include <unistd.h>

namespace ssm {

std::string fmt(double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", x);
  return buf;
}

double spectral_radius(const Mat& A) {
  require(A.rows() == A.cols(), "spectral_radius: matrix must be square");
  if (A.size() == 0) return 0.0;
  Eigen::EigenSolver<Mat> es(A, /*computeEigenvectors=*/false);
  return es.eigenvalues().cwiseAbs().maxCoeff();
}

double max_abs_diff(const Eigen::Ref<const Eigen::ArrayXd>& a,
                    const Eigen::Ref<const Eigen::ArrayXd>& b) {
  require(a.size() == b.size(), "max_abs_diff: sizes differ (" + std::to_string(a.size()) +
                                    " vs " + std::to_string(b.size()) + ")");
  if (a.size() == 0) return 0.0;
  return (a - b).abs().maxCoeff();
}

double max_rel_diff(const Eigen::Ref<const Eigen::ArrayXd>& a,
                    const Eigen::Ref<const Eigen::ArrayXd>& b) {
  const double d = max_abs_diff(a, b);
  if (d == 0.0) return 0.0;
  const double scale = b.abs().maxCoeff();
  return scale > 0 ? d / scale : d;
}

void write_file_atomic(const std::string& path, std::string_view content) {
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw Error("cannot write '" + path + "' (is the directory there and writable?)");
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    out.flush();
    if (!out) {
      std::remove(tmp.c_str());
      throw Error("writing '" + path + "' failed (disk full?)");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw Error("cannot rename the temporary file onto '" + path + "'");
  }
}

std::uint64_t mix_seed(std::uint64_t seed, std::uint64_t stream) {
  std::uint64_t z = seed + 0x9e3779b97f4a7c15ULL * (stream + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace ssm

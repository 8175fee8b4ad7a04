#include "ssm/hippo.hpp"

#include <cmath>
#include <string>

namespace ssm::hippo {

std::pair<Mat, Vec> legs(int N) {
  require(N >= 1 && N <= 4096, "--N must be in [1, 4096], got " + std::to_string(N));
  Mat A = Mat::Zero(N, N);
  Vec B(N);
  for (int n = 0; n < N; ++n) {
    B(n) = std::sqrt(2.0 * n + 1.0);
    for (int k = 0; k < n; ++k) A(n, k) = -std::sqrt(2.0 * n + 1.0) * std::sqrt(2.0 * k + 1.0);
    A(n, n) = -(n + 1.0);  // (H1)
  }
  return {A, B};
}

}  // namespace ssm::hippo

// The fast selective scan built for x86-64-v2 (no AVX, no AVX-512): the generic vector-extension
// path of ssm/vmath.hpp and the element-loop transposes, against the reference built alongside.
#include "helpers.hpp"
#include "ssm/selective.hpp"
#include "ssm/vmath.hpp"

using namespace ssm;

TEST_CASE("portable build: fast scan == reference in float and double") {
  CHECK(!simd::defined_avx512());
  for (int N : {16, 5}) {
    ScanParams<double> p;
    ScanInputs<double> in;
    // D = 21 and L = 150: a partial channel group and a partial chunk; ZOH for N = 5.
    random_scan_problem<double>({2, 21, 150, N}, 3, p, in,
                                {true, true, true, N == 5 ? ScanDiscretization::ZOH : ScanDiscretization::Mamba});
    const auto ref = selective_scan_reference(p, in);
    ScanOutputs<double> od;
    selective_scan(p, in, od, 2);
    ScanOutputs<float> of;
    selective_scan(cast_params<float>(p), cast_inputs<float>(in), of, 2);
    double ed = 0, ef = 0, scale = 0;
    for (std::size_t i = 0; i < ref.y.size(); ++i) {
      ed = std::max(ed, std::fabs(od.y[i] - ref.y[i]));
      ef = std::max(ef, std::fabs(double(of.y[i]) - ref.y[i]));
      scale = std::max(scale, std::fabs(ref.y[i]));
    }
    // Same bounds as test_selective (the same code, other instructions).
    CHECK(ed <= 1e-12 * scale);
    CHECK(ef <= 2e-5 * scale);
  }
}

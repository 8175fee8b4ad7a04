// Stage 5: HiPPO matrices.
#include <cmath>

#include "helpers.hpp"
#include "ssm/hippo.hpp"

using namespace ssm;

TEST_CASE("LegS (H1): closed-form entries for N = 4") {
  const auto [A, B] = hippo::legs(4);
  // Row n: −√(2n+1)√(2k+1) below the diagonal, −(n+1) on it, 0 above.
  CHECK(A(0, 0) == -1.0);
  CHECK(A(1, 1) == -2.0);
  CHECK(A(3, 3) == -4.0);
  CHECK(std::fabs(A(1, 0) + std::sqrt(3.0)) < 1e-15);
  CHECK(std::fabs(A(3, 1) + std::sqrt(7.0 * 3.0)) < 1e-15);
  CHECK(A(0, 3) == 0.0);
  CHECK(A(1, 2) == 0.0);
  CHECK(std::fabs(B(2) - std::sqrt(5.0)) < 1e-15);
  // Lower triangular: eigenvalues are the diagonal −1, −2, …, −N (stable).
  CHECK(A.triangularView<Eigen::StrictlyUpper>().toDenseMatrix().norm() == 0.0);
}

TEST_CASE("LegS rejects N out of range") {
  CHECK_THROWS_AS(hippo::legs(0), Error);
  CHECK_THROWS_AS(hippo::legs(4097), Error);
}

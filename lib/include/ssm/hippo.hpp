// ssm/hippo.hpp — stage 5: HiPPO, the memory matrices that compress a signal's history.
//
// (H1) HiPPO-LegS:  A_nk = −√(2n+1)·√(2k+1) if n > k,  −(n+1) if n = k,  0 if n < k;
//                   B_n  = √(2n+1),       n, k = 0 … N−1.
//      (The HiPPO paper writes A with the opposite sign and a minus in the ODE; here
//       x' = Ax + Bu throughout, so A is the negated paper matrix.)
// (H3) With c'(t) = (1/t) A c(t) + (1/t) B u(t), c_n(t) are the coefficients of the projection
//      of u on [0, t] onto the scaled Legendre polynomials g_n(s) = √(2n+1) P_n(2s/t − 1).
#pragma once

#include <utility>

#include "ssm/core.hpp"

namespace ssm::hippo {

// (A, B) of HiPPO-LegS with N states (H1). N in [1, 4096]. Cost O(N²).
std::pair<Mat, Vec> legs(int N);

}  // namespace ssm::hippo

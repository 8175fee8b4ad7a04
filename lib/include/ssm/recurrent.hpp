// ssm/recurrent.hpp — stage 3: the discretized model run as a recurrence (an RNN).
//
//     x_k = Ā x_{k−1} + B̄ u_k,     y_k = C x_k + D u_k,     x_{−1} = 0 (or a given state)
//
// The recurrence is the natural view for inference: one token in, one token out, O(N²) work
// and O(N) memory per step. Its weakness is training on a whole sequence: the L steps are
// sequential. Stage 4 turns the same computation into a convolution that is not.
// Precision T is double (the reference) or float (the speed path); both share this code.
#pragma once

#include <vector>

#include "ssm/discretize.hpp"

namespace ssm {

template <class T>
using MatT = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>;
template <class T>
using VecT = Eigen::Matrix<T, Eigen::Dynamic, 1>;
template <class T>
using RowVecT = Eigen::Matrix<T, 1, Eigen::Dynamic>;

// One discrete SISO channel (Ā, B̄, C, D) in precision T.
template <class T>
struct DiscreteSSM {
  MatT<T> Ab;     // (N, N)
  VecT<T> Bb;     // (N)
  RowVecT<T> C;   // (N)
  T D = T(0);
  int N() const { return static_cast<int>(Ab.rows()); }
};

// The channel of a discretized model with output map C, D (validated: sizes, finite).
DiscreteSSM<double> make_ssm(const Discretized& d, const RowVec& C, double D = 0.0);
DiscreteSSM<double> make_ssm(const Model& m, double dt, Method method, double alpha = 0.5);
// The same channel rounded to float.
DiscreteSSM<float> to_float(const DiscreteSSM<double>& s);

// Unrolls one channel over L steps: y (L) from u (L), starting from x_{−1} = x_start (zero when
// empty). When states is non-null it receives every x_k as a column (N, L). Cost O(N² L).
template <class T>
void unroll(const DiscreteSSM<T>& s, const T* u, T* y, std::size_t L,
            const VecT<T>& x_start = VecT<T>(), MatT<T>* states = nullptr);

// Convenience for double vectors.
Vec unroll(const DiscreteSSM<double>& s, const Vec& u, const Vec& x_start = Vec(),
           Mat* states = nullptr);

// H independent channels: row h of Y (H, L) is channel h run on row h of U (H, L).
// channels.size() must be H, or 1 to share one channel across all rows. Channels are spread
// over `threads` threads (0 = all cores).
template <class T>
void unroll_channels(const std::vector<DiscreteSSM<T>>& channels, const Signals<T>& U,
                     Signals<T>& Y, int threads = 1);

// The streaming form: keeps x between calls; step() takes u_k and returns y_k in O(N²).
template <class T>
class Stepper {
 public:
  explicit Stepper(DiscreteSSM<T> s, const VecT<T>& x_start = VecT<T>());
  T step(T u);
  const VecT<T>& state() const { return x_; }
  void reset(const VecT<T>& x_start = VecT<T>());

 private:
  DiscreteSSM<T> s_;
  VecT<T> x_, tmp_;
};

// Resolves a thread count: 0 → all available cores; otherwise clamps to [1, 1024].
int resolve_threads(int threads);

}  // namespace ssm

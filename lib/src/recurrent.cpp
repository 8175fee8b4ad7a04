#include "ssm/recurrent.hpp"

#include <omp.h>

#include <algorithm>

namespace ssm {

DiscreteSSM<double> make_ssm(const Discretized& d, const RowVec& C, double D) {
  require(C.size() == d.Ab.rows(), "C must have N = " + std::to_string(d.Ab.rows()) +
                                       " entries, got " + std::to_string(C.size()));
  require(C.allFinite() && std::isfinite(D), "C and D must be finite");
  return DiscreteSSM<double>{d.Ab, d.Bb, C, D};
}

DiscreteSSM<double> make_ssm(const Model& m, double dt, Method method, double alpha) {
  return make_ssm(discretize(m, dt, method, alpha), m.C(), m.D());
}

DiscreteSSM<float> to_float(const DiscreteSSM<double>& s) {
  return DiscreteSSM<float>{s.Ab.cast<float>(), s.Bb.cast<float>(), s.C.cast<float>(),
                            static_cast<float>(s.D)};
}

int resolve_threads(int threads) {
  if (threads <= 0) return std::max(1, omp_get_num_procs());
  return std::min(threads, 1024);
}

namespace {

template <class T>
VecT<T> start(const DiscreteSSM<T>& s, const VecT<T>& x_start) {
  if (x_start.size() == 0) return VecT<T>::Zero(s.N());
  require(x_start.size() == s.N(), "initial state must have N = " + std::to_string(s.N()) +
                                       " entries, got " + std::to_string(x_start.size()));
  return x_start;
}

}  // namespace

template <class T>
void unroll(const DiscreteSSM<T>& s, const T* u, T* y, std::size_t L, const VecT<T>& x_start,
            MatT<T>* states) {
  VecT<T> x = start(s, x_start), next(s.N());
  if (states) states->resize(s.N(), static_cast<Eigen::Index>(L));
  for (std::size_t k = 0; k < L; ++k) {
    next.noalias() = s.Ab * x;  // x_k = Ā x_{k−1} + B̄ u_k
    next += s.Bb * u[k];
    x.swap(next);
    y[k] = s.C.dot(x) + s.D * u[k];  // y_k = C x_k + D u_k
    if (states) states->col(static_cast<Eigen::Index>(k)) = x;
  }
}

Vec unroll(const DiscreteSSM<double>& s, const Vec& u, const Vec& x_start, Mat* states) {
  Vec y(u.size());
  unroll<double>(s, u.data(), y.data(), static_cast<std::size_t>(u.size()), x_start, states);
  return y;
}

template <class T>
void unroll_channels(const std::vector<DiscreteSSM<T>>& channels, const Signals<T>& U,
                     Signals<T>& Y, int threads) {
  const auto H = U.rows();
  require(channels.size() == 1 || static_cast<Eigen::Index>(channels.size()) == H,
          "unroll_channels: need 1 or H = " + std::to_string(H) + " channels, got " +
              std::to_string(channels.size()));
  Y.resize(H, U.cols());
  const auto L = static_cast<std::size_t>(U.cols());
#pragma omp parallel for num_threads(resolve_threads(threads)) schedule(static)
  for (Eigen::Index h = 0; h < H; ++h) {
    const auto& s = channels.size() == 1 ? channels[0] : channels[static_cast<std::size_t>(h)];
    unroll<T>(s, U.row(h).data(), Y.row(h).data(), L);
  }
}

template <class T>
Stepper<T>::Stepper(DiscreteSSM<T> s, const VecT<T>& x_start)
    : s_(std::move(s)), x_(start(s_, x_start)), tmp_(s_.N()) {}

template <class T>
T Stepper<T>::step(T u) {
  tmp_.noalias() = s_.Ab * x_;
  tmp_ += s_.Bb * u;
  x_.swap(tmp_);
  return s_.C.dot(x_) + s_.D * u;
}

template <class T>
void Stepper<T>::reset(const VecT<T>& x_start) {
  x_ = start(s_, x_start);
}

template void unroll<float>(const DiscreteSSM<float>&, const float*, float*, std::size_t,
                            const VecT<float>&, MatT<float>*);
template void unroll<double>(const DiscreteSSM<double>&, const double*, double*, std::size_t,
                             const VecT<double>&, MatT<double>*);
template void unroll_channels<float>(const std::vector<DiscreteSSM<float>>&,
                                     const Signals<float>&, Signals<float>&, int);
template void unroll_channels<double>(const std::vector<DiscreteSSM<double>>&,
                                      const Signals<double>&, Signals<double>&, int);
template class Stepper<float>;
template class Stepper<double>;

}  // namespace ssm

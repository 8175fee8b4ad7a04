// lib/src/weight_checks.hpp — private to the library: the checks every model runs on its weights
// and sizes, with one message format, written once for grad_mamba.cpp (the Mamba block and LM),
// s4d_lm.cpp and attention_lm.cpp. `who` prefixes each message ("Mamba LM: layers.1.",
// "S4D LM: ", "attention LM: ").
#pragma once

#include <cmath>
#include <string>

#include "ssm/core.hpp"  // Error, require, fmt

namespace ssm::detail {

inline std::string shape_of(Eigen::Index rows, Eigen::Index cols) {
  return std::to_string(rows) + "x" + std::to_string(cols);
}

// Throws Error unless lo ≤ v ≤ hi ("S4D LM: d_model = 0 is outside [1, 4096]").
inline void check_int(const std::string& who, const char* field, int v, int lo, int hi) {
  if (v < lo || v > hi)
    throw Error(who + field + " = " + std::to_string(v) + " is outside [" + std::to_string(lo) +
                ", " + std::to_string(hi) + "]");
}

// Throws Error unless m is rows × cols (a vector: rows entries) and finite, naming the array
// ("attention LM: layers.1.wk is 3x4, expected 4x4 (d_model, d_model)"); `what` names the
// expected shape in words.
template <class M>
void check_array(const std::string& who, const std::string& name, const M& m, Eigen::Index rows,
                 Eigen::Index cols, const char* what) {
  const bool vec = M::ColsAtCompileTime == 1;
  if (m.rows() != rows || m.cols() != cols)
    throw Error(
        who + name +
        (vec ? " has " + std::to_string(m.rows()) + " entries, expected " + std::to_string(rows)
             : " is " + shape_of(m.rows(), m.cols()) + ", expected " + shape_of(rows, cols)) +
        " (" + what + ")");
  for (Eigen::Index j = 0; j < m.cols(); ++j)
    for (Eigen::Index i = 0; i < m.rows(); ++i)
      if (!std::isfinite(static_cast<double>(m(i, j))))
        throw Error(who + name + "(" + std::to_string(i) + (vec ? "" : ", " + std::to_string(j)) +
                    ") = " + fmt(static_cast<double>(m(i, j))) + " is not finite");
}

}  // namespace ssm::detail

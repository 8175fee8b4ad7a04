// ssm/signal.hpp: the input signals every app can run on.
//
// A signal is a sequence of samples u_k = u(k·Δ), k = 0 … L−1. When it comes from a built-in
// generator its continuous-time function u(t) is known too, so stage 1 can integrate the ODE on
// the true input; a signal read from a file is known only at its samples and is held constant
// between them: u(t) = u_k for t in (t_{k−1}, t_k] — the hold under which ZOH is exact (D5).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace ssm {

struct Signal {
  std::string name;                  // generator spec or file name, for titles and legends
  double dt = 1.0;                   // sample spacing Δ (seconds)
  std::vector<double> samples;       // u_k = u(k·Δ)
  std::function<double(double)> fn;  // u(t) when known analytically; empty for files and noise

  std::size_t size() const { return samples.size(); }
  // u(t): the analytic function when known, otherwise the held sample u_{⌈t/Δ⌉} (clamped).
  double at(double t) const;
  // True when at() interpolates samples by the hold (no analytic u(t)).
  bool held() const { return !fn; }
};

// The generator names: sine, sines, chirp, step, square, impulse, noise, walk.
const std::vector<std::string>& signal_generators();

// Builds a signal from a spec:
//   a generator, optionally with parameters:  "sine", "sine:f=2,amp=0.5", "chirp:f0=0.5,f1=8"
//     common keys: f (Hz, default 1), amp (default 1); step: t0 (s); chirp: f0, f1 (Hz)
//   a CSV file: "path.csv" (first column) or "path.csv:name" / "path.csv:3" (column by header
//     name or 1-based index); one sample per line, an optional header line; spacing Δ = dt
//   a WAV file: "path.wav" (first channel, scaled to [−1, 1]); spacing from its sample rate
// L samples are generated (for files: the first L, or the whole file when L == 0).
// seed drives noise and walk. Throws Error naming the file, line and column of bad data.
Signal make_signal(const std::string& spec, std::size_t L, double dt, std::uint64_t seed);

// Reads one column of a CSV file (see make_signal); throws Error naming file, line and column.
std::vector<double> read_csv_column(const std::string& path, const std::string& column = "");

}  // namespace ssm

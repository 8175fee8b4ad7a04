#include "ssm/signal.hpp"

#include <sndfile.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <map>
#include <numbers>
#include <random>
#include <sstream>

#include "ssm/core.hpp"

namespace ssm {

namespace {

constexpr double kTwoPi = 2.0 * std::numbers::pi;

bool ends_with(const std::string& s, const std::string& suffix) {
  if (s.size() < suffix.size()) return false;
  return std::equal(suffix.rbegin(), suffix.rend(), s.rbegin(),
                    [](char a, char b) { return std::tolower(a) == std::tolower(b); });
}

std::string trim(std::string s) {
  const auto ws = " \t\r\n";
  s.erase(0, s.find_first_not_of(ws));
  s.erase(s.find_last_not_of(ws) + 1);
  return s;
}

// Parses a whole string as a double (no trailing junk); false when it is not a number.
bool parse_double(const std::string& text, double& out) {
  const std::string t = trim(text);
  if (t.empty()) return false;
  const char* first = t.data();
  if (*first == '+') ++first;
  auto [ptr, ec] = std::from_chars(first, t.data() + t.size(), out);
  return ec == std::errc() && ptr == t.data() + t.size();
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream in(s);
  while (std::getline(in, cur, sep)) out.push_back(cur);
  if (!s.empty() && s.back() == sep) out.emplace_back();
  return out;
}

using Params = std::map<std::string, double>;

Params parse_params(const std::string& gen, const std::string& text) {
  Params p;
  if (text.empty()) return p;
  for (const auto& item : split(text, ',')) {
    const auto eq = item.find('=');
    double v = 0;
    if (eq == std::string::npos || !parse_double(item.substr(eq + 1), v) || !std::isfinite(v))
      throw Error("signal '" + gen + "': parameter '" + item +
                  "' is not of the form key=number");
    p[trim(item.substr(0, eq))] = v;
  }
  return p;
}

double get(const Params& p, const std::string& key, double dflt) {
  auto it = p.find(key);
  return it == p.end() ? dflt : it->second;
}

void check_keys(const std::string& gen, const Params& p, std::initializer_list<const char*> ok) {
  for (const auto& [k, v] : p) {
    bool found = false;
    std::string list;
    for (const char* o : ok) {
      found = found || k == o;
      list += std::string(list.empty() ? "" : ", ") + o;
    }
    if (!found)
      throw Error("signal '" + gen + "': unknown parameter '" + k + "' (valid: " + list + ")");
  }
}

Signal generate(const std::string& gen, const Params& p, std::size_t L, double dt,
                std::uint64_t seed) {
  Signal s;
  s.dt = dt;
  s.samples.resize(L);
  const double T = static_cast<double>(L) * dt;
  const double amp = get(p, "amp", 1.0);
  const double f = get(p, "f", 1.0);
  if (gen == "sine") {
    check_keys(gen, p, {"f", "amp"});
    s.fn = [=](double t) { return amp * std::sin(kTwoPi * f * t); };
  } else if (gen == "sines") {
    // Detail at several time scales: a slow wave, a faster one and a fast ripple.
    check_keys(gen, p, {"f", "amp"});
    s.fn = [=](double t) {
      return amp * (std::sin(kTwoPi * f * t) + 0.5 * std::sin(kTwoPi * 3.1 * f * t + 0.7) +
                    0.25 * std::sin(kTwoPi * 7.3 * f * t + 1.9));
    };
  } else if (gen == "chirp") {
    // Linear chirp: instantaneous frequency f0 + (f1 − f0)·t/T.
    check_keys(gen, p, {"f0", "f1", "amp"});
    const double f0 = get(p, "f0", 0.5), f1 = get(p, "f1", 8.0);
    const double k = T > 0 ? (f1 - f0) / T : 0.0;
    s.fn = [=](double t) { return amp * std::sin(kTwoPi * (f0 * t + 0.5 * k * t * t)); };
  } else if (gen == "step") {
    check_keys(gen, p, {"t0", "amp"});
    const double t0 = get(p, "t0", 0.0);
    s.fn = [=](double t) { return t >= t0 ? amp : 0.0; };
  } else if (gen == "square") {
    check_keys(gen, p, {"f", "amp"});
    s.fn = [=](double t) {
      const double ph = t * f - std::floor(t * f);
      return ph < 0.5 ? amp : -amp;
    };
  } else if (gen == "impulse") {
    // A discrete unit impulse u_0 = amp: the recurrence then outputs the kernel K̄ itself (K1).
    check_keys(gen, p, {"amp"});
    if (L > 0) s.samples[0] = amp;
    return s;
  } else if (gen == "noise" || gen == "walk") {
    check_keys(gen, p, {"amp"});
    std::mt19937_64 rng(mix_seed(seed, gen == "noise" ? 1 : 2));
    std::normal_distribution<double> normal(0.0, 1.0);
    double acc = 0.0;
    // A random walk of L steps scaled so its typical size at the end is about amp.
    const double step = L > 0 ? 1.0 / std::sqrt(static_cast<double>(L)) : 0.0;
    for (auto& v : s.samples) {
      if (gen == "noise") {
        v = amp * normal(rng);
      } else {
        acc += step * normal(rng);
        v = amp * acc;
      }
    }
    return s;
  } else {
    std::string list;
    for (const auto& g : signal_generators()) list += (list.empty() ? "" : ", ") + g;
    throw Error("unknown signal '" + gen + "' (valid: " + list + ", or a .csv/.wav file)");
  }
  for (std::size_t k = 0; k < L; ++k) s.samples[k] = s.fn(static_cast<double>(k) * dt);
  return s;
}

std::vector<double> read_wav(const std::string& path, double& dt) {
  SF_INFO info{};
  SNDFILE* f = sf_open(path.c_str(), SFM_READ, &info);
  if (!f) throw Error("cannot read WAV file '" + path + "': " + sf_strerror(nullptr));
  if (info.frames <= 0 || info.channels <= 0) {
    sf_close(f);
    throw Error("WAV file '" + path + "' holds no samples");
  }
  std::vector<double> inter(static_cast<std::size_t>(info.frames) * info.channels);
  const sf_count_t got = sf_readf_double(f, inter.data(), info.frames);
  sf_close(f);
  std::vector<double> out(static_cast<std::size_t>(got));
  for (sf_count_t i = 0; i < got; ++i) {
    out[i] = inter[static_cast<std::size_t>(i) * info.channels];
    if (!std::isfinite(out[i]))
      throw Error("WAV file '" + path + "': sample " + std::to_string(i) + " is not finite");
  }
  if (out.empty()) throw Error("WAV file '" + path + "' holds no samples");
  dt = 1.0 / info.samplerate;
  return out;
}

}  // namespace

double Signal::at(double t) const {
  if (fn) return fn(t);
  if (samples.empty()) return 0.0;
  const double k = std::ceil(t / dt - 1e-9);  // u(t) = u_k on (t_{k−1}, t_k]
  const auto i = static_cast<std::size_t>(std::clamp(k, 0.0, double(samples.size() - 1)));
  return samples[i];
}

const std::vector<std::string>& signal_generators() {
  static const std::vector<std::string> g = {"sine",    "sines", "chirp", "step",
                                             "square", "impulse", "noise", "walk"};
  return g;
}

std::vector<double> read_csv_column(const std::string& path, const std::string& column) {
  std::ifstream in(path);
  if (!in) throw Error("cannot open signal file '" + path + "'");
  std::vector<double> out;
  std::string line;
  std::size_t lineno = 0;
  int col = -1;  // 0-based column once known
  if (!column.empty()) {
    double idx = 0;
    if (parse_double(column, idx)) {
      if (idx < 1 || idx != std::floor(idx))
        throw Error("signal file '" + path + "': column '" + column + "' must be >= 1");
      col = static_cast<int>(idx) - 1;
    }
  }
  bool header_done = false;
  while (std::getline(in, line)) {
    ++lineno;
    if (trim(line).empty() || trim(line)[0] == '#') continue;
    const auto cells = split(line, ',');
    if (!header_done) {
      header_done = true;
      double probe = 0;
      const bool numeric = std::all_of(cells.begin(), cells.end(),
                                       [&](const std::string& c) { return parse_double(c, probe); });
      if (!numeric) {  // (from_chars reads nan/inf as numbers: caught below)
        // A header line: resolve a named column.
        if (col < 0 && !column.empty()) {
          for (std::size_t j = 0; j < cells.size(); ++j)
            if (trim(cells[j]) == column) col = static_cast<int>(j);
          if (col < 0)
            throw Error("signal file '" + path + "': no column named '" + column +
                        "' in the header (line " + std::to_string(lineno) + ")");
        }
        continue;
      }
      if (col < 0 && !column.empty())
        throw Error("signal file '" + path + "' has no header line, so column '" + column +
                    "' cannot be found by name");
    }
    if (col < 0) col = 0;
    if (col >= static_cast<int>(cells.size()))
      throw Error("signal file '" + path + "' line " + std::to_string(lineno) + ": no column " +
                  std::to_string(col + 1) + " (the line has " + std::to_string(cells.size()) +
                  ")");
    double v = 0;
    const std::string cell = trim(cells[col]);
    if (!parse_double(cell, v))
      throw Error("signal file '" + path + "' line " + std::to_string(lineno) + " column " +
                  std::to_string(col + 1) + ": '" + cell + "' is not a number");
    if (!std::isfinite(v))
      throw Error("signal file '" + path + "' line " + std::to_string(lineno) + " column " +
                  std::to_string(col + 1) + ": value '" + cell + "' is not finite");
    out.push_back(v);
  }
  if (out.empty()) throw Error("signal file '" + path + "' holds no samples");
  return out;
}

Signal make_signal(const std::string& spec, std::size_t L, double dt, std::uint64_t seed) {
  require(std::isfinite(dt) && dt > 0, "signal: sample spacing dt must be finite and > 0, got " +
                                           fmt(dt));
  // Files: "x.csv", "x.csv:col", "x.wav".
  const auto colon = spec.rfind(':');
  const std::string base = (colon != std::string::npos && ends_with(spec.substr(0, colon), ".csv"))
                               ? spec.substr(0, colon)
                               : spec;
  if (ends_with(base, ".csv") || ends_with(base, ".wav")) {
    Signal s;
    s.name = spec;
    s.dt = dt;
    if (ends_with(base, ".wav")) {
      s.samples = read_wav(base, s.dt);
    } else {
      s.samples = read_csv_column(base, base == spec ? "" : spec.substr(colon + 1));
    }
    if (L > 0 && s.samples.size() > L) s.samples.resize(L);
    return s;
  }
  const std::string gen = colon == std::string::npos ? spec : spec.substr(0, colon);
  const Params p = parse_params(gen, colon == std::string::npos ? "" : spec.substr(colon + 1));
  Signal s = generate(gen, p, L, dt, seed);
  s.name = spec;
  return s;
}

}  // namespace ssm

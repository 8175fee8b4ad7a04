// apps/common/appkit.hpp — what every ssm-* executable shares: the common flags, the error
// convention, cross-check reporting, tables, JSON and figure output. Apps only parse, call the
// library, print and plot (DESIGN.md); this kit keeps those four things uniform.
//
// Exit codes: 0 success; 1 a cross-check failed (named, with its error and tolerance);
// 2 bad input ("ssm-<app>: error: <one line>"), never a stack trace or a half-written file.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

#include "ssm/core.hpp"
#include "ssm/plot.hpp"
#include "ssm/signal.hpp"

namespace ssm::app {

// A tiny JSON value: enough to print an app's summary (objects keep insertion order).
class Json {
 public:
  Json() : v_(nullptr) {}
  Json(double x) : v_(x) {}
  Json(int x) : v_(static_cast<double>(x)) {}
  Json(long x) : v_(static_cast<double>(x)) {}
  Json(long long x) : v_(static_cast<double>(x)) {}
  Json(unsigned long x) : v_(static_cast<double>(x)) {}
  Json(unsigned long long x) : v_(static_cast<double>(x)) {}
  Json(bool b) : v_(b) {}
  Json(const char* s) : v_(std::string(s)) {}
  Json(std::string s) : v_(std::move(s)) {}
  static Json array() { Json j; j.v_ = Array{}; return j; }
  static Json object() { Json j; j.v_ = Object{}; return j; }
  // Object access (turns a null into an object); keeps insertion order.
  Json& operator[](const std::string& key);
  // Array append (turns a null into an array).
  Json& push(Json v);
  std::string dump() const;

 private:
  using Array = std::vector<Json>;
  using Object = std::vector<std::pair<std::string, Json>>;
  std::variant<std::nullptr_t, double, bool, std::string, Array, Object> v_;
};

// A cross-check between two views that must agree: passes when error <= tolerance.
struct Check {
  std::string name;  // e.g. "recurrence vs FFT convolution (double, rel)"
  double error = 0.0;
  double tolerance = 0.0;
  bool pass() const { return error <= tolerance; }  // NaN never passes
};

// A text table with aligned columns; also renders as CSV.
class Table {
 public:
  explicit Table(std::vector<std::string> header) : header_(std::move(header)) {}
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  std::string text() const;
  std::string csv() const;
  const std::vector<std::vector<std::string>>& rows() const { return rows_; }
  const std::vector<std::string>& header() const { return header_; }

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

// Number formatting for tables: %.3g, %.6g, %.2e ("n/a" for NaN).
std::string g3(double x);
std::string g6(double x);
std::string e2(double x);

class App {
 public:
  // name without the "ssm-" prefix; about: 3–6 lines explaining what the app shows.
  App(std::string name, std::string about);

  CLI::App& cli() { return cli_; }
  const std::string& name() const { return name_; }

  // The shared flags (DESIGN.md): --csv, --json, --plot, --plot-terminal, --seed.
  std::string csv_path, plot_path;
  bool json = false, plot_terminal = false;
  std::uint64_t seed = 1;

  // Adds --signal, --L and --dt with the given defaults (the input-signal convention).
  void add_signal_flags(std::string default_signal, long long default_L, double default_dt);
  std::string signal_spec;
  long long L = 0;
  double dt = 0.0;
  // Builds the signal from --signal/--L/--dt (validated; errors name the flag or file).
  Signal signal() const;

  // Adds --threads (0 = all cores).
  void add_threads_flag(int default_threads = 0);
  int threads = 0;

  // Parses argv and runs body with the error convention; returns the process exit code.
  int run(int argc, char** argv, const std::function<void()>& body);

  // Human-readable output: stdout normally, stderr under --json (stdout then holds JSON only).
  std::ostream& out();
  // The JSON summary printed on stdout at the end under --json.
  Json& summary() { return summary_; }

  // Records a cross-check; all are printed as one table at the end, and a failure exits 1.
  void check(const std::string& name, double error, double tolerance);
  const std::vector<Check>& checks() const { return checks_; }

  // Writes a figure according to --plot, --plot-terminal and --csv (the data behind the plot).
  // `default_name` names it in JSON ("figure").
  void figure(const plot::Figure& fig, const std::string& key = "figure");
  // Writes a table as CSV beside the plot (PLOT-stem-<suffix>.csv) and to --csv when there is
  // no figure data; adds it to the JSON summary under `key`.
  void table(const Table& t, const std::string& key);

 private:
  std::string name_;
  CLI::App cli_;
  Json summary_ = Json::object();
  std::vector<Check> checks_;
  int figures_ = 0;
};

// Flag validation: each throws ssm::Error naming the flag, the value and the valid range.
void require_positive(const std::string& flag, double v);                  // finite, > 0
void require_range(const std::string& flag, double v, double lo, double hi);  // finite, [lo, hi]
void require_int_range(const std::string& flag, long long v, long long lo, long long hi);
// Splits "8,32,128" into numbers; throws naming the flag on a bad item or an empty list.
std::vector<double> parse_list(const std::string& flag, const std::string& text);
std::vector<std::string> split_names(const std::string& text);

}  // namespace ssm::app

namespace ssm::app {
// Median wall time of fn() in seconds over `reps` timed batches, each batch repeating fn
// until it takes at least min_batch seconds (so short calls are timed reliably).
double time_median(const std::function<void()>& fn, int reps = 5, double min_batch = 0.02);
}  // namespace ssm::app

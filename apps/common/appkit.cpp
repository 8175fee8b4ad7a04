#include "appkit.hpp"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iomanip>
#include <iostream>

namespace ssm::app {

namespace {

std::string escape(const std::string& s) {
  std::string o = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': o += "\\\""; break;
      case '\\': o += "\\\\"; break;
      case '\n': o += "\\n"; break;
      case '\t': o += "\\t"; break;
      default:
        if (c < 0x20) {
          char b[8];
          std::snprintf(b, sizeof b, "\\u%04x", c);
          o += b;
        } else {
          o += static_cast<char>(c);
        }
    }
  }
  return o + "\"";
}

}  // namespace

Json& Json::operator[](const std::string& key) {
  if (std::holds_alternative<std::nullptr_t>(v_)) v_ = Object{};
  auto& obj = std::get<Object>(v_);
  for (auto& [k, v] : obj)
    if (k == key) return v;
  obj.emplace_back(key, Json());
  return obj.back().second;
}

Json& Json::push(Json v) {
  if (std::holds_alternative<std::nullptr_t>(v_)) v_ = Array{};
  auto& arr = std::get<Array>(v_);
  arr.push_back(std::move(v));
  return arr.back();
}

std::string Json::dump() const {
  return std::visit(
      [](const auto& x) -> std::string {
        using X = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<X, std::nullptr_t>) {
          return "null";
        } else if constexpr (std::is_same_v<X, double>) {
          if (!std::isfinite(x)) return "null";  // JSON has no NaN/Inf
          char b[40];
          std::snprintf(b, sizeof b, "%.10g", x);
          return b;
        } else if constexpr (std::is_same_v<X, bool>) {
          return x ? "true" : "false";
        } else if constexpr (std::is_same_v<X, std::string>) {
          return escape(x);
        } else if constexpr (std::is_same_v<X, Array>) {
          std::string o = "[";
          for (std::size_t i = 0; i < x.size(); ++i) o += (i ? ", " : "") + x[i].dump();
          return o + "]";
        } else {
          std::string o = "{";
          for (std::size_t i = 0; i < x.size(); ++i)
            o += (i ? ", " : "") + escape(x[i].first) + ": " + x[i].second.dump();
          return o + "}";
        }
      },
      v_);
}

std::string Table::text() const {
  std::vector<std::size_t> w(header_.size(), 0);
  auto width = [](const std::string& s) {  // UTF-8 aware: count code points
    std::size_t n = 0;
    for (unsigned char c : s) n += (c & 0xC0) != 0x80;
    return n;
  };
  for (std::size_t j = 0; j < header_.size(); ++j) w[j] = width(header_[j]);
  for (const auto& r : rows_)
    for (std::size_t j = 0; j < r.size() && j < w.size(); ++j) w[j] = std::max(w[j], width(r[j]));
  std::ostringstream o;
  auto line = [&](const std::vector<std::string>& r) {
    for (std::size_t j = 0; j < w.size(); ++j) {
      const std::string c = j < r.size() ? r[j] : "";
      o << (j ? "  " : "  ") << c << std::string(w[j] - width(c), ' ');
    }
    o << "\n";
  };
  line(header_);
  std::size_t total = 0;
  for (auto x : w) total += x + 2;
  o << "  " << std::string(total - 2, '-') << "\n";
  for (const auto& r : rows_) line(r);
  return o.str();
}

std::string Table::csv() const {
  std::ostringstream o;
  auto line = [&](const std::vector<std::string>& r) {
    for (std::size_t j = 0; j < r.size(); ++j) {
      std::string c = r[j];
      if (c.find_first_of(",\"") != std::string::npos) {
        std::string q = "\"";
        for (char ch : c) q += ch == '"' ? std::string("\"\"") : std::string(1, ch);
        c = q + "\"";
      }
      o << (j ? "," : "") << c;
    }
    o << "\n";
  };
  line(header_);
  for (const auto& r : rows_) line(r);
  return o.str();
}

namespace {
std::string format(const char* f, double x) {
  if (std::isnan(x)) return "n/a";
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  char b[40];
  std::snprintf(b, sizeof b, f, x);
  return b;
}
}  // namespace

std::string g3(double x) { return format("%.3g", x); }
std::string g6(double x) { return format("%.6g", x); }
std::string e2(double x) { return format("%.2e", x); }

App::App(std::string name, std::string about) : name_(std::move(name)), cli_(about, "ssm-" + name_) {
  cli_.set_version_flag("--version", std::string("ssmlab ") + "0.1.0");
  cli_.add_option("--csv", csv_path, "Write the data behind the plot to this CSV file");
  cli_.add_flag("--json", json, "Print a machine-readable summary (JSON) on stdout");
  cli_.add_option("--plot", plot_path,
                  "Draw the figure to PATH.png or PATH.svg (the .gp and .csv stay beside it)");
  cli_.add_flag("--plot-terminal", plot_terminal, "Draw the figure as text in the terminal");
  cli_.add_option("--seed", seed, "Random seed (models, noise)")->capture_default_str();
  cli_.get_formatter()->column_width(34);
}

void App::add_signal_flags(std::string default_signal, long long default_L, double default_dt) {
  signal_spec = std::move(default_signal);
  L = default_L;
  dt = default_dt;
  std::string gens;
  for (const auto& g : signal_generators()) gens += (gens.empty() ? "" : ", ") + g;
  cli_.add_option("--signal", signal_spec,
                  "Input: a generator (" + gens +
                      "; parameters as sine:f=2,amp=0.5) or a file (x.csv, x.csv:column, x.wav)")
      ->capture_default_str();
  cli_.add_option("--L", L, "Number of samples, in [1, 2^26]")->capture_default_str();
  cli_.add_option("--dt", dt, "Sample spacing Δ in seconds (finite, > 0)")->capture_default_str();
}

Signal App::signal() const {
  require_int_range("--L", L, 1, 1LL << 26);
  require_positive("--dt", dt);
  return make_signal(signal_spec, static_cast<std::size_t>(L), dt, seed);
}

void App::add_threads_flag(int default_threads) {
  threads = default_threads;
  cli_.add_option("--threads", threads, "Threads for the parallel paths (0 = all cores)")
      ->capture_default_str();
}

std::ostream& App::out() { return json ? std::cerr : std::cout; }

void App::check(const std::string& name, double error, double tolerance) {
  checks_.push_back(Check{name, error, tolerance});
}

void App::figure(const plot::Figure& fig, const std::string& key) {
  ++figures_;
  if (!csv_path.empty() && figures_ == 1) write_file_atomic(csv_path, plot::to_csv(fig));
  if (!plot_path.empty()) {
    std::string path = plot_path;
    if (figures_ > 1) {
      const std::filesystem::path p(plot_path);
      path = (p.parent_path() / (p.stem().string() + "-" + key + p.extension().string())).string();
    }
    const plot::Rendered r = plot::render(fig, path);
    if (r.drawn) {
      out() << "figure: " << path << "\n";
      summary_["figures"].push(path);
    } else {
      out() << r.message << "\n";
    }
  }
  if (plot_terminal) out() << plot::render_terminal(fig);
}

void App::table(const Table& t, const std::string& key) {
  Json rows = Json::array();
  for (const auto& r : t.rows()) {
    Json o = Json::object();
    for (std::size_t j = 0; j < r.size() && j < t.header().size(); ++j) {
      // Numbers stay numbers in JSON.
      char* end = nullptr;
      const double v = std::strtod(r[j].c_str(), &end);
      if (!r[j].empty() && end && *end == '\0')
        o[t.header()[j]] = v;
      else
        o[t.header()[j]] = r[j];
    }
    rows.push(o);
  }
  summary_[key] = rows;
  if (!plot_path.empty()) {
    const std::filesystem::path p(plot_path);
    write_file_atomic((p.parent_path() / (p.stem().string() + "-" + key + ".csv")).string(),
                      t.csv());
  }
}

int App::run(int argc, char** argv, const std::function<void()>& body) {
  const std::string prefix = "ssm-" + name_ + ": ";
  try {
    try {
      cli_.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
      return cli_.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
      return cli_.exit(e);
    } catch (const CLI::CallForVersion& e) {
      return cli_.exit(e);
    } catch (const CLI::ParseError& e) {
      std::cerr << prefix << "error: " << e.what() << " (see --help)\n";
      return 2;
    }
    body();
  } catch (const ssm::Error& e) {
    std::cerr << prefix << "error: " << e.what() << "\n";
    return 2;
  } catch (const std::bad_alloc&) {
    std::cerr << prefix << "error: out of memory (try a smaller --L or --N)\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << prefix << "error: " << e.what() << "\n";
    return 2;
  }
  // Cross-checks: one table, then exit 1 on any failure.
  int failed = 0;
  if (!checks_.empty()) {
    Table t({"cross-check", "error", "tolerance", "result"});
    Json arr = Json::array();
    for (const auto& c : checks_) {
      t.add({c.name, e2(c.error), e2(c.tolerance), c.pass() ? "PASS" : "FAIL"});
      Json o = Json::object();
      o["app"] = "ssm-" + name_;
      o["name"] = c.name;
      o["error"] = c.error;
      o["tolerance"] = c.tolerance;
      o["pass"] = c.pass();
      arr.push(o);
      failed += !c.pass();
    }
    out() << "\ncross-checks:\n" << t.text();
    summary_["checks"] = arr;
  }
  if (json) std::cout << summary_.dump() << "\n";
  for (const auto& c : checks_)
    if (!c.pass())
      std::cerr << prefix << "check failed: " << c.name << ": error " << e2(c.error)
                << " > tolerance " << e2(c.tolerance) << "\n";
  return failed ? 1 : 0;
}

void require_positive(const std::string& flag, double v) {
  require(std::isfinite(v) && v > 0, flag + " must be finite and > 0, got " + fmt(v));
}

void require_range(const std::string& flag, double v, double lo, double hi) {
  require(std::isfinite(v) && v >= lo && v <= hi,
          flag + " must be in [" + fmt(lo) + ", " + fmt(hi) + "], got " + fmt(v));
}

void require_int_range(const std::string& flag, long long v, long long lo, long long hi) {
  require(v >= lo && v <= hi, flag + " must be in [" + std::to_string(lo) + ", " +
                                  (hi == (1LL << 26) ? std::string("2^26") : std::to_string(hi)) +
                                  "], got " + std::to_string(v));
}

std::vector<std::string> split_names(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    const auto b = item.find_first_not_of(" \t"), e = item.find_last_not_of(" \t");
    if (b != std::string::npos) out.push_back(item.substr(b, e - b + 1));
  }
  return out;
}

std::vector<double> parse_list(const std::string& flag, const std::string& text) {
  std::vector<double> out;
  for (const auto& item : split_names(text)) {
    char* end = nullptr;
    const double v = std::strtod(item.c_str(), &end);
    require(end && *end == '\0' && std::isfinite(v),
            flag + ": '" + item + "' is not a number (expected a list like 8,32,128)");
    out.push_back(v);
  }
  require(!out.empty(), flag + " needs at least one value");
  return out;
}

}  // namespace ssm::app

#include <algorithm>
#include <chrono>

namespace ssm::app {

double time_median(const std::function<void()>& fn, int reps, double min_batch) {
  using clock = std::chrono::steady_clock;
  fn();  // warm-up: caches, lazy allocations
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    int n = 0;
    const auto t0 = clock::now();
    double el = 0.0;
    do {
      fn();
      ++n;
      el = std::chrono::duration<double>(clock::now() - t0).count();
    } while (el < min_batch);
    t.push_back(el / n);
  }
  std::nth_element(t.begin(), t.begin() + reps / 2, t.end());
  return t[reps / 2];
}

}  // namespace ssm::app

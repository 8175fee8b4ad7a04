// Input signals: generators and files, and the one-line errors for bad files.
#include <sndfile.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <numbers>

#include "helpers.hpp"
#include "ssm/signal.hpp"

using namespace ssm;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    char t[] = "/tmp/ssmlab-test-XXXXXX";
    path = mkdtemp(t);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string file(const std::string& name, const std::string& content) const {
    const auto p = path / name;
    std::ofstream(p) << content;
    return p.string();
  }
};

std::string error_of(const std::string& spec) {
  try {
    make_signal(spec, 0, 0.1, 1);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace

TEST_CASE("generators sample their function at t_k = k dt") {
  const Signal s = make_signal("sine:f=2,amp=0.5", 100, 0.01, 1);
  REQUIRE(s.size() == 100);
  for (int k = 0; k < 100; ++k)
    CHECK(std::fabs(s.samples[k] - 0.5 * std::sin(2 * std::numbers::pi * 2 * 0.01 * k)) < 1e-15);
  CHECK(std::fabs(s.at(0.123) - 0.5 * std::sin(2 * std::numbers::pi * 2 * 0.123)) < 1e-15);
  const Signal imp = make_signal("impulse", 5, 1.0, 1);
  CHECK(imp.samples == std::vector<double>{1, 0, 0, 0, 0});
  const Signal st = make_signal("step:t0=0.3", 6, 0.1, 1);
  CHECK(st.samples == std::vector<double>{0, 0, 0, 1, 1, 1});
  for (const auto& g : signal_generators()) CHECK(make_signal(g, 64, 0.01, 3).size() == 64);
}

TEST_CASE("noise and walk are reproducible per seed") {
  CHECK(make_signal("noise", 50, 1, 7).samples == make_signal("noise", 50, 1, 7).samples);
  CHECK(make_signal("noise", 50, 1, 7).samples != make_signal("noise", 50, 1, 8).samples);
  CHECK(make_signal("walk", 50, 1, 7).held());
}

TEST_CASE("held samples: u(t) = u_k on the interval from t_{k-1} (open) to t_k (closed)") {
  TempDir d;
  const Signal s = make_signal(d.file("x.csv", "1\n2\n3\n"), 0, 0.5, 1);
  CHECK(s.held());
  CHECK(s.at(0.0) == 1.0);
  CHECK(s.at(0.25) == 2.0);
  CHECK(s.at(0.5) == 2.0);
  CHECK(s.at(0.75) == 3.0);
  CHECK(s.at(9.0) == 3.0);
}

TEST_CASE("CSV: one column or a named or numbered column and truncation to L") {
  TempDir d;
  const std::string f = d.file("t.csv", "time,value,other\n0,1.5,9\n1,-2,8\n2,3e-1,7\n");
  CHECK(make_signal(f + ":value", 0, 1, 1).samples == std::vector<double>{1.5, -2, 0.3});
  CHECK(make_signal(f + ":3", 0, 1, 1).samples == std::vector<double>{9, 8, 7});
  CHECK(make_signal(f, 2, 1, 1).samples == std::vector<double>{0, 1});
  CHECK(make_signal(d.file("plain.csv", "# a comment\n4\n\n5\n"), 0, 1, 1).samples == std::vector<double>{4, 5});
}

TEST_CASE("bad CSV files give one line naming file and line and column") {
  TempDir d;
  CHECK(error_of((d.path / "missing.csv").string()).find("cannot open signal file") != std::string::npos);
  CHECK(error_of(d.file("empty.csv", "")).find("holds no samples") != std::string::npos);
  const std::string e1 = error_of(d.file("bad.csv", "1\n2\nabc\n"));
  CHECK(e1.find("bad.csv' line 3 column 1: 'abc' is not a number") != std::string::npos);
  const std::string e2 = error_of(d.file("nan.csv", "1\nnan\n"));
  CHECK(e2.find("line 2 column 1: value 'nan' is not finite") != std::string::npos);
  const std::string e3 = error_of(d.file("inf.csv", "a,b\n1,2\n3,inf\n") + ":b");
  CHECK(e3.find("line 3 column 2") != std::string::npos);
  CHECK(error_of(d.file("h.csv", "a,b\n1,2\n") + ":zz").find("no column named 'zz'") != std::string::npos);
  CHECK(error_of(d.file("short.csv", "1,2\n3\n") + ":2").find("line 2: no column 2") != std::string::npos);
  for (const auto& e : {e1, e2, e3}) CHECK(e.find('\n') == std::string::npos);
}

TEST_CASE("WAV: first channel scaled to plus or minus 1 and spacing from the sample rate") {
  TempDir d;
  const std::string path = (d.path / "a.wav").string();
  SF_INFO info{};
  info.samplerate = 8000;
  info.channels = 2;
  info.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
  SNDFILE* f = sf_open(path.c_str(), SFM_WRITE, &info);
  REQUIRE(f != nullptr);
  const short frames[] = {16384, 1, -16384, 2, 0, 3};  // left: 0.5, −0.5, 0
  sf_writef_short(f, frames, 3);
  sf_close(f);
  const Signal s = make_signal(path, 0, 1.0, 1);
  CHECK(s.dt == 1.0 / 8000);
  CHECK(s.samples == std::vector<double>{0.5, -0.5, 0.0});
  CHECK(error_of(d.file("junk.wav", "not a wav")).find("cannot read WAV file") != std::string::npos);
}

TEST_CASE("unknown generators and parameters are named with the valid ones") {
  CHECK(error_of("sawtooth").find("unknown signal 'sawtooth' (valid: sine, sines, chirp") != std::string::npos);
  CHECK(error_of("sine:q=1").find("unknown parameter 'q' (valid: f, amp)") != std::string::npos);
  CHECK(error_of("sine:f").find("not of the form key=number") != std::string::npos);
  CHECK_THROWS_AS(make_signal("sine", 10, -1.0, 1), Error);
}

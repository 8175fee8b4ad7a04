// The plotting helper and atomic output.
#include <filesystem>
#include <fstream>
#include <sstream>

#include "helpers.hpp"
#include "ssm/plot.hpp"

using namespace ssm;
namespace fs = std::filesystem;

namespace {
plot::Figure small_figure() {
  plot::Figure f;
  f.title = "a title";
  plot::Panel p;
  p.title = "panel";
  p.xlabel = "x (s)";
  p.ylabel = "y";
  p.series.push_back({"first", {0, 1, 2}, {1, 2, 3}, "lines", ""});
  p.series.push_back({"second", {0, 1}, {5, NAN}, "points", ""});
  f.panels.push_back(p);
  return f;
}
struct TempDir {
  fs::path path;
  TempDir() {
    char t[] = "/tmp/ssmlab-plot-test-XXXXXX";
    path = mkdtemp(t);
  }
  ~TempDir() { fs::remove_all(path); }
};
}  // namespace

TEST_CASE("to_csv: two columns per series and gaps as NaN") {
  const std::string csv = plot::to_csv(small_figure());
  std::istringstream in(csv);
  std::string header, r0, r1, r2;
  std::getline(in, header);
  std::getline(in, r0);
  std::getline(in, r1);
  std::getline(in, r2);
  CHECK(header == "panel: first x,panel: first y,panel: second x,panel: second y");
  CHECK(r0 == "0,1,0,5");
  CHECK(r1 == "1,2,1,NaN");
  CHECK(r2 == "2,3,NaN,NaN");
}

TEST_CASE("render writes the image with its .gp and .csv beside it and no temporary files") {
  if (!plot::gnuplot_available()) {
    MESSAGE("gnuplot not installed: checking the data and script only");
  }
  TempDir d;
  const auto png = d.path / "fig.png";
  const plot::Rendered r = plot::render(small_figure(), png.string());
  CHECK(fs::exists(d.path / "fig.csv"));
  CHECK(fs::exists(d.path / "fig.gp"));
  if (plot::gnuplot_available()) {
    CHECK(r.drawn);
    CHECK(fs::file_size(png) > 1000);
  }
  for (const auto& e : fs::directory_iterator(d.path))
    CHECK(e.path().filename().string().find("tmp") == std::string::npos);
}

TEST_CASE("render refuses a bad extension or a missing directory without writing anything") {
  TempDir d;
  CHECK_THROWS_AS(plot::render(small_figure(), (d.path / "fig.jpg").string()), Error);
  CHECK_THROWS_AS(plot::render(small_figure(), (d.path / "nope" / "fig.png").string()), Error);
  CHECK(fs::is_empty(d.path));
}

TEST_CASE("write_file_atomic replaces the file whole and leaves no temporary") {
  TempDir d;
  const auto p = (d.path / "out.txt").string();
  write_file_atomic(p, "first");
  write_file_atomic(p, "second");
  std::ifstream in(p);
  std::string s;
  std::getline(in, s);
  CHECK(s == "second");
  CHECK(std::distance(fs::directory_iterator(d.path), fs::directory_iterator()) == 1);
  CHECK_THROWS_AS(write_file_atomic((d.path / "no" / "x.txt").string(), "x"), Error);
}

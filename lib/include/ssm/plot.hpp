// ssm/plot.hpp: one small helper that turns a figure description into gnuplot output.
//
// Every figure is written as three files side by side: the image (PATH.png or PATH.svg), the
// data (PATH-stem.csv, two columns per curve) and the script (PATH-stem.gp), so a student can
// edit the .gp and re-run `gnuplot stem.gp` in that directory. `render_terminal` draws the same
// figure as text (gnuplot's dumb terminal). Without gnuplot the .csv and .gp are still written
// and render() says so in its result instead of failing.
#pragma once

#include <string>
#include <vector>

#include "ssm/core.hpp"

namespace ssm::plot {

struct Series {
  std::string label;           // legend entry ("" hides it from the key)
  std::vector<double> x, y;    // same length; non-finite y values are written as gaps
  std::string style = "lines"; // gnuplot style: lines, points, linespoints, steps, impulses
  std::string extra;           // extra gnuplot options, e.g. "dashtype 2 lc rgb '#888888'"
};

// A heat map drawn with gnuplot's `with image`: z(i, j) at (x[j], y[i]).
struct Image {
  std::vector<double> x, y;
  Mat z;               // rows = y.size(), cols = x.size()
  std::string zlabel;  // colour-bar label
};

struct Panel {
  std::string title, xlabel, ylabel;
  bool logx = false, logy = false;
  std::vector<Series> series;
  std::vector<Image> images;       // drawn below the series
  std::vector<std::string> extra;  // raw gnuplot commands for this panel (arrows, labels, ranges)
};

struct Figure {
  std::string title;          // what to notice; shown above all panels
  std::vector<Panel> panels;  // stacked in a grid, `columns` across
  int columns = 1;
  int width = 0, height = 0;  // pixels; 0 = chosen from the number of panels
};

// Result of drawing a figure.
struct Rendered {
  bool drawn = false;   // the image exists
  std::string message;  // one line when not drawn (gnuplot missing or failed)
};

// True when a gnuplot executable is on PATH.
bool gnuplot_available();

// Every curve of the figure as CSV: a header line, then one row per index, two columns
// ("panel: label x", "panel: label y") per series; shorter series leave empty cells.
std::string to_csv(const Figure& fig);

// Writes stem.csv, stem.gp and the image at `path` (.png or .svg; stem = path without its
// extension), each atomically. Throws Error for an unsupported extension or unwritable path.
Rendered render(const Figure& fig, const std::string& path);

// The same figure as text for the terminal (gnuplot's dumb terminal), or a one-line note
// when gnuplot is missing.
std::string render_terminal(const Figure& fig, int cols = 110, int rows = 0);

// An animation: each frame is one panel, drawn in turn (gnuplot's gif terminal, `animate`).
// Frames should share their axis ranges (set them in Panel::extra) so the picture holds still.
struct Animation {
  std::string title;          // what to notice; shown above every frame's own title
  std::vector<Panel> frames;  // images are not supported in frames (series only)
  int delay = 8;              // hundredths of a second between frames
  int width = 900, height = 460;
};

// Writes PATH.gif and stem-gif.gp beside it, each atomically; the script holds the frames' data
// inline (one datablock per frame and curve), so it re-draws the GIF on its own. Throws Error
// unless path ends in .gif and its directory exists. Without gnuplot the .gp is written and
// the result says so.
Rendered render_animation(const Animation& anim, const std::string& path);

}  // namespace ssm::plot

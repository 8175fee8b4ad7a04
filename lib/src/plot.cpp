#include "ssm/plot.hpp"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>

namespace ssm::plot {

namespace fs = std::filesystem;

namespace {

// Okabe–Ito colours: distinguishable with every common form of colour blindness.
const char* const kColours[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                "#E69F00", "#56B4E9", "#000000", "#999933"};

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// Breaks a long title into lines of at most `width` characters at spaces.
std::vector<std::string> wrap(const std::string& text, std::size_t width) {
  std::vector<std::string> lines;
  std::string line, word;
  std::istringstream in(text);
  auto len = [](const std::string& s) {  // code points, not bytes
    std::size_t n = 0;
    for (unsigned char c : s) n += (c & 0xC0) != 0x80;
    return n;
  };
  while (in >> word) {
    if (!line.empty() && len(line) + 1 + len(word) > width) {
      lines.push_back(line);
      line.clear();
    }
    line += (line.empty() ? "" : " ") + word;
  }
  if (!line.empty()) lines.push_back(line);
  return lines;
}

std::string num(double v) {
  if (!std::isfinite(v)) return "NaN";
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

std::string csv_cell_name(const Panel& p, std::size_t pi, const Series& s, std::size_t si,
                          const char* axis) {
  std::string name = (p.title.empty() ? "panel " + std::to_string(pi + 1) : p.title) + ": " +
                     (s.label.empty() ? "series " + std::to_string(si + 1) : s.label) + " " +
                     axis;
  std::replace(name.begin(), name.end(), ',', ';');
  std::replace(name.begin(), name.end(), '"', '\'');
  return name;
}

std::string image_csv(const Image& im) {
  std::ostringstream out;
  out << "x,y,z\n";
  for (std::size_t i = 0; i < im.y.size(); ++i)
    for (std::size_t j = 0; j < im.x.size(); ++j)
      out << num(im.x[j]) << ',' << num(im.y[i]) << ','
          << num(im.z(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j))) << '\n';
  return out.str();
}

void check_figure(const Figure& fig) {
  for (const auto& p : fig.panels) {
    for (const auto& s : p.series)
      require(s.x.size() == s.y.size(),
              "plot: series '" + s.label + "' has " + std::to_string(s.x.size()) + " x and " +
                  std::to_string(s.y.size()) + " y values");
    for (const auto& im : p.images)
      require(im.z.rows() == static_cast<Eigen::Index>(im.y.size()) &&
                  im.z.cols() == static_cast<Eigen::Index>(im.x.size()),
              "plot: image z must be y.size() × x.size()");
  }
}

// The gnuplot script. `terminal` is the full `set terminal` line; data files are referred to
// by their base names, so the script runs in its own directory.
std::string script(const Figure& fig, const std::string& stem_name, const std::string& terminal,
                   const std::string& default_out, std::size_t title_width) {
  // Powers of ten as 10^{n} need enhanced text (images); plain text shows 1e-05.
  const bool text = terminal.find("dumb") != std::string::npos;
  const std::string logfmt = text ? "'%.0e'" : "'10^{%T}'";
  std::ostringstream g;
  g << "# ssmlab figure: " << fig.title << "\n"
    << "# Data in " << stem_name << ".csv (two columns per curve). Re-draw with:\n"
    << "#   gnuplot " << stem_name << ".gp      (run in this directory)\n";
  if (!default_out.empty())
    g << "if (!exists(\"outfile\")) outfile = " << quote(default_out) << "\n";
  g << terminal << "\n";
  if (!default_out.empty()) g << "set output outfile\n";
  g << "set datafile separator ','\n"
    << "set datafile missing 'NaN'\n"
    << "set grid lc rgb '#dddddd'\n"
    << "set key top right box opaque samplen 2 font ',9'\n"
    << "set border lw 1.2\n"
    << "set style fill solid\n";
  const std::size_t np = fig.panels.size();
  const int cols = std::max(1, fig.columns);
  const std::size_t rows = (np + cols - 1) / cols;
  // The title may wrap: quote each line and join them with gnuplot's "\n".
  std::string title;
  for (const auto& line : wrap(fig.title, title_width))
    title += (title.empty() ? "" : " . \"\\n\" . ") + quote(line);
  if (title.empty()) title = "\"\"";
  g << "set multiplot layout " << rows << "," << cols << " title " << title << " font ',13'\n";
  std::size_t col = 1;  // running CSV column (1-based)
  for (std::size_t pi = 0; pi < np; ++pi) {
    const Panel& p = fig.panels[pi];
    g << "\n# --- panel " << pi + 1 << ": " << p.title << "\n"
      << "set title " << quote(p.title) << "\n"
      << "set xlabel " << quote(p.xlabel) << "\n"
      << "set ylabel " << quote(p.ylabel) << "\n"
      << (p.logx ? "set logscale x\nset format x " + logfmt + "\n"
                 : "unset logscale x\nset format x '% h'\n")
      << "set autoscale xfix\n"
      << (p.logy ? "set logscale y\nset format y " + logfmt + "\nset offsets 0, 0, 0, 0\n"
                 : "unset logscale y\nset format y '% h'\nset offsets 0, 0, graph 0.06, graph 0.06\n");
    for (const auto& e : p.extra) g << e << "\n";
    std::vector<std::string> items;
    for (std::size_t ii = 0; ii < p.images.size(); ++ii) {
      items.push_back(quote(stem_name + "-p" + std::to_string(pi + 1) + "-image" +
                            std::to_string(ii + 1) + ".csv") +
                      " skip 1 using 1:2:3 with image notitle");
      g << "set cblabel " << quote(p.images[ii].zlabel) << "\n"
        << "set palette defined (0 '#2166ac', 0.5 '#f7f7f7', 1 '#b2182b')\n";
    }
    for (std::size_t si = 0; si < p.series.size(); ++si) {
      const Series& s = p.series[si];
      std::string it = quote(stem_name + ".csv") + " skip 1 using " + std::to_string(col) + ":" +
                       std::to_string(col + 1) + " with " + s.style;
      if (s.extra.find("lc ") == std::string::npos)
        it += std::string(" lc rgb '") + kColours[si % std::size(kColours)] + "'";
      if ((s.style.find("lines") != std::string::npos || s.style == "steps" ||
           s.style == "impulses") &&
          s.extra.find("lw ") == std::string::npos)
        it += " lw 2";
      if (!s.extra.empty()) it += " " + s.extra;
      it += s.label.empty() ? " notitle" : " title " + quote(s.label) + " noenhanced";
      items.push_back(it);
      col += 2;
    }
    if (items.empty()) {
      g << "set multiplot next\n";
      continue;
    }
    g << "plot ";
    for (std::size_t i = 0; i < items.size(); ++i)
      g << (i ? ", \\\n     " : "") << items[i];
    g << "\n";
    for (const auto& e : p.extra)
      if (e.rfind("set arrow", 0) == 0 || e.rfind("set label", 0) == 0 ||
          e.rfind("set object", 0) == 0) {
        g << "unset arrow\nunset label\nunset object\n";
        break;
      }
    g << "unset xrange\nset autoscale\n";
  }
  g << "unset multiplot\n";
  return g.str();
}

// Runs `gnuplot script` in directory `dir` with extra -e definitions; stdout is captured into
// *out when given. Returns the exit status (127 when gnuplot cannot be started).
int run_gnuplot(const std::string& dir, const std::string& script_name, const std::string& define,
                std::string* out, std::string* err) {
  int outpipe[2], errpipe[2];
  if (pipe(outpipe) != 0 || pipe(errpipe) != 0) return 127;
  const pid_t pid = fork();
  if (pid < 0) return 127;
  if (pid == 0) {
    if (chdir(dir.c_str()) != 0) _exit(127);
    dup2(outpipe[1], 1);
    dup2(errpipe[1], 2);
    close(outpipe[0]);
    close(errpipe[0]);
    if (define.empty())
      execlp("gnuplot", "gnuplot", script_name.c_str(), static_cast<char*>(nullptr));
    else
      execlp("gnuplot", "gnuplot", "-e", define.c_str(), script_name.c_str(),
             static_cast<char*>(nullptr));
    _exit(127);
  }
  close(outpipe[1]);
  close(errpipe[1]);
  // Drain both pipes (stderr first would deadlock on a large stdout; poll in turn).
  auto drain = [](int fd, std::string* sink) {
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
      if (sink) sink->append(buf, static_cast<std::size_t>(n));
    close(fd);
  };
  std::string errtext;
  drain(outpipe[0], out);
  drain(errpipe[0], &errtext);
  if (err) *err = errtext;
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

std::string first_line(const std::string& s) {
  std::istringstream in(s);
  std::string line, last;
  while (std::getline(in, line))
    if (line.find("error") != std::string::npos || line.find("rror") != std::string::npos)
      return line;
    else if (!line.empty())
      last = line;
  return last;
}

void write_data(const Figure& fig, const fs::path& dir, const std::string& stem_name) {
  write_file_atomic((dir / (stem_name + ".csv")).string(), to_csv(fig));
  for (std::size_t pi = 0; pi < fig.panels.size(); ++pi)
    for (std::size_t ii = 0; ii < fig.panels[pi].images.size(); ++ii)
      write_file_atomic((dir / (stem_name + "-p" + std::to_string(pi + 1) + "-image" +
                                std::to_string(ii + 1) + ".csv"))
                            .string(),
                        image_csv(fig.panels[pi].images[ii]));
}

}  // namespace

bool gnuplot_available() {
  const char* path = std::getenv("PATH");
  if (!path) return false;
  std::istringstream in(path);
  std::string d;
  while (std::getline(in, d, ':'))
    if (!d.empty() && access((fs::path(d) / "gnuplot").c_str(), X_OK) == 0) return true;
  return false;
}

std::string to_csv(const Figure& fig) {
  check_figure(fig);
  std::vector<const Series*> all;
  std::vector<std::string> names;
  std::size_t rows = 0;
  for (std::size_t pi = 0; pi < fig.panels.size(); ++pi)
    for (std::size_t si = 0; si < fig.panels[pi].series.size(); ++si) {
      const Series& s = fig.panels[pi].series[si];
      all.push_back(&s);
      names.push_back(csv_cell_name(fig.panels[pi], pi, s, si, "x"));
      names.push_back(csv_cell_name(fig.panels[pi], pi, s, si, "y"));
      rows = std::max(rows, s.x.size());
    }
  std::ostringstream out;
  for (std::size_t i = 0; i < names.size(); ++i) out << (i ? "," : "") << names[i];
  out << "\n";
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t k = 0; k < all.size(); ++k) {
      if (k) out << ',';
      if (r < all[k]->x.size()) out << num(all[k]->x[r]) << ',' << num(all[k]->y[r]);
      else out << "NaN,NaN";
    }
    out << "\n";
  }
  return out.str();
}

Rendered render(const Figure& fig, const std::string& path) {
  check_figure(fig);
  const fs::path p(path);
  const std::string ext = p.extension().string();
  require(ext == ".png" || ext == ".svg",
          "--plot: '" + path + "' must end in .png or .svg");
  fs::path dir = p.parent_path();
  if (dir.empty()) dir = ".";
  require(fs::is_directory(dir), "--plot: directory '" + dir.string() + "' does not exist");
  const std::string stem_name = p.stem().string();
  const std::size_t rows = (fig.panels.size() + std::max(1, fig.columns) - 1) /
                           static_cast<std::size_t>(std::max(1, fig.columns));
  const int w = fig.width > 0 ? fig.width : 1000 * std::min(2, std::max(1, fig.columns));
  const int h = fig.height > 0 ? fig.height : static_cast<int>(70 + 340 * std::max<std::size_t>(1, rows));
  const std::string terminal =
      ext == ".png" ? "set terminal pngcairo size " + std::to_string(w) + "," + std::to_string(h) +
                          " enhanced font 'Sans,10' linewidth 1"
                    : "set terminal svg size " + std::to_string(w) + "," + std::to_string(h) +
                          " enhanced font 'Sans,10' background '#ffffff'";
  write_data(fig, dir, stem_name);
  write_file_atomic((dir / (stem_name + ".gp")).string(),
                    script(fig, stem_name, terminal, p.filename().string(),
                           static_cast<std::size_t>(w / 9)));
  Rendered r;
  if (!gnuplot_available()) {
    r.message = "plot skipped: gnuplot not found (the data and script are in " +
                (dir / stem_name).string() + ".csv/.gp)";
    return r;
  }
  const std::string tmp_name = "." + p.filename().string() + ".tmp-" + std::to_string(getpid());
  std::string err;
  const int rc = run_gnuplot(dir.string(), stem_name + ".gp", "outfile='" + tmp_name + "'",
                             nullptr, &err);
  const fs::path tmp = dir / tmp_name;
  std::error_code ec;
  if (rc != 0 || !fs::exists(tmp) || fs::file_size(tmp, ec) == 0) {
    fs::remove(tmp, ec);
    r.message = "plot failed: gnuplot on " + (dir / (stem_name + ".gp")).string() + ": " +
                first_line(err);
    return r;
  }
  fs::rename(tmp, p, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw Error("--plot: cannot write '" + path + "'");
  }
  r.drawn = true;
  return r;
}

std::string render_terminal(const Figure& figure, int cols, int rows) {
  Figure fig = figure;
  fig.columns = 1;  // side-by-side panels are unreadable at terminal resolution
  check_figure(fig);
  if (!gnuplot_available()) return "(plot skipped: gnuplot not found)\n";
  char tmpl[] = "/tmp/ssmlab-plot-XXXXXX";
  if (!mkdtemp(tmpl)) return "(plot skipped: cannot create a temporary directory)\n";
  const fs::path dir(tmpl);
  const std::size_t prow = (fig.panels.size() + std::max(1, fig.columns) - 1) /
                           static_cast<std::size_t>(std::max(1, fig.columns));
  if (rows <= 0) rows = static_cast<int>(4 + 24 * std::max<std::size_t>(1, prow));
  const std::string terminal =
      "set terminal dumb size " + std::to_string(cols) + "," + std::to_string(rows) + " noenhanced";
  std::string out, err;
  try {
    write_data(fig, dir, "figure");
    write_file_atomic((dir / "figure.gp").string(), script(fig, "figure", terminal, "", static_cast<std::size_t>(cols - 4)));
    run_gnuplot(dir.string(), "figure.gp", "", &out, &err);
  } catch (const Error&) {
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
  return out.empty() ? "(plot failed: " + first_line(err) + ")\n" : out;
}

Rendered render_animation(const Animation& anim, const std::string& path) {
  const fs::path p(path);
  require(p.extension() == ".gif", "--animate: '" + path + "' must end in .gif");
  fs::path dir = p.parent_path();
  if (dir.empty()) dir = ".";
  require(fs::is_directory(dir), "--animate: directory '" + dir.string() + "' does not exist");
  require(!anim.frames.empty(), "--animate: an animation needs at least one frame");
  for (const auto& f : anim.frames)
    for (const auto& s : f.series)
      require(s.x.size() == s.y.size(), "plot: series '" + s.label + "' has " +
                                            std::to_string(s.x.size()) + " x and " +
                                            std::to_string(s.y.size()) + " y values");
  // The script is stem-gif.gp, so that a figure and an animation with the same stem (x.png,
  // x.gif) do not overwrite each other's x.gp.
  const std::string stem_name = p.stem().string() + "-gif";
  // The data sits in the script as named datablocks ($f<frame>_<curve>), read once: gnuplot
  // would rescan a data file from its start for every `index` of every frame.
  auto short_num = [](double v) {
    if (!std::isfinite(v)) return std::string("NaN");
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.7g", v);
    return std::string(buf);
  };
  std::ostringstream g;
  g << "# ssmlab animation: " << anim.title << "\n"
    << "# One datablock per frame and curve, then one plot per frame. Re-draw with:\n"
    << "#   gnuplot " << stem_name << ".gp      (run in this directory)\n"
    << "if (!exists(\"outfile\")) outfile = " << quote(p.filename().string()) << "\n"
    << "set datafile separator ','\n"
    << "set datafile missing 'NaN'\n";
  for (std::size_t fi = 0; fi < anim.frames.size(); ++fi)
    for (std::size_t si = 0; si < anim.frames[fi].series.size(); ++si) {
      const Series& s = anim.frames[fi].series[si];
      g << "$f" << fi + 1 << "_" << si + 1 << " << EOD\n";
      for (std::size_t i = 0; i < s.x.size(); ++i)
        g << short_num(s.x[i]) << ',' << short_num(s.y[i]) << '\n';
      g << "EOD\n";
    }
  g << "set terminal gif animate delay " << std::max(1, anim.delay) << " loop 0 size " << anim.width
    << "," << anim.height << " font 'Sans,10'\n"
    << "set output outfile\n"
    << "set grid lc rgb '#dddddd'\n"
    << "set key top left box opaque samplen 2\n";
  std::string head;
  for (const auto& line : wrap(anim.title, static_cast<std::size_t>(anim.width / 8)))
    head += (head.empty() ? "" : " . \"\\n\" . ") + quote(line);
  for (std::size_t fi = 0; fi < anim.frames.size(); ++fi) {
    const Panel& f = anim.frames[fi];
    g << "\n# --- frame " << fi + 1 << "\n"
      << "set title " << head << (head.empty() ? "" : " . \"\\n\" . ") << quote(f.title) << "\n"
      << "set xlabel " << quote(f.xlabel) << "\n"
      << "set ylabel " << quote(f.ylabel) << "\n";
    for (const auto& e : f.extra) g << e << "\n";
    if (f.series.empty()) continue;
    g << "plot ";
    for (std::size_t si = 0; si < f.series.size(); ++si) {
      const Series& s = f.series[si];
      std::string it = "$f" + std::to_string(fi + 1) + "_" + std::to_string(si + 1) +
                       " using 1:2 with " + s.style;
      if (s.extra.find("lc ") == std::string::npos)
        it += std::string(" lc rgb '") + kColours[si % std::size(kColours)] + "'";
      if (s.style.find("lines") != std::string::npos && s.extra.find("lw ") == std::string::npos)
        it += " lw 2";
      if (!s.extra.empty()) it += " " + s.extra;
      it += s.label.empty() ? " notitle" : " title " + quote(s.label) + " noenhanced";
      g << (si ? ", \\\n     " : "") << it;
    }
    g << "\n";
  }
  write_file_atomic((dir / (stem_name + ".gp")).string(), g.str());
  Rendered r;
  if (!gnuplot_available()) {
    r.message = "animation skipped: gnuplot not found (the data and script are in " +
                (dir / stem_name).string() + ".gp)";
    return r;
  }
  const std::string tmp_name = "." + p.filename().string() + ".tmp-" + std::to_string(getpid());
  std::string err;
  const int rc =
      run_gnuplot(dir.string(), stem_name + ".gp", "outfile='" + tmp_name + "'", nullptr, &err);
  const fs::path tmp = dir / tmp_name;
  std::error_code ec;
  if (rc != 0 || !fs::exists(tmp) || fs::file_size(tmp, ec) == 0) {
    fs::remove(tmp, ec);
    r.message = "animation failed: gnuplot on " + (dir / (stem_name + ".gp")).string() + ": " +
                first_line(err);
    return r;
  }
  fs::rename(tmp, p, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw Error("--animate: cannot write '" + path + "'");
  }
  r.drawn = true;
  return r;
}

}  // namespace ssm::plot

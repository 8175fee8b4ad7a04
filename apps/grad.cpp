// ssm-grad — stage 8a: how far back a gradient reaches. ∂y_{L−1}/∂u_{L−1−k} against the lag k
// for an LTI SSM, a selective SSM and a tanh RNN of the same state size, beside what the
// eigenvalues predict (docs/MATH.md G20, G21). Parses, calls the library, prints, plots.
#include "ssm/grad.hpp"

#include <algorithm>
#include <cmath>
#include <set>

#include "appkit.hpp"
#include "ssm/convolution.hpp"
#include "ssm/grad_lesson.hpp"
#include "ssm/grad_s4.hpp"
#include "ssm/hippo.hpp"
#include "ssm/recurrent.hpp"

namespace {

using namespace ssm;

// Up to `count` lags spread evenly over [0, L), plus the extra ones (for the finite-difference
// checks: every lag would cost O(L²) forward steps).
std::vector<int> sample_lags(int L, int count, const std::vector<int>& extra) {
  std::set<int> s(extra.begin(), extra.end());
  for (int i = 0; i < count; ++i) s.insert(int((long long)i * (L - 1) / std::max(1, count - 1)));
  std::vector<int> out;
  for (int k : s)
    if (k >= 0 && k < L) out.push_back(k);
  return out;
}

// max_k |a_k − b(lag_k)| / max |b|: the relative error of a gradient known at some lags only.
double rel_at(const Vec& a, const Vec& b, const std::vector<int>& lags) {
  double worst = 0;
  for (std::size_t i = 0; i < lags.size(); ++i)
    worst = std::max(worst, std::fabs(a(Eigen::Index(i)) - b(lags[i])));
  return worst / b.cwiseAbs().maxCoeff();
}

// |g| for a log axis: zeros and values below double's normal range become gaps.
plot::Series abs_series(std::string label, const Vec& g, std::string extra) {
  plot::Series s{std::move(label), {}, {}, "lines", std::move(extra)};
  for (Eigen::Index k = 0; k < g.size(); ++k) {
    const double a = std::fabs(g(k));
    s.x.push_back(double(k));
    s.y.push_back(a >= 1e-300 ? a : NAN);
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  app::App a(
      "grad",
      "Stage 8a: how far back does a gradient reach? For three models of the same state size N\n"
      "it computes g_k = dy_{L-1}/du_{L-1-k}, the gradient of the last output with respect to\n"
      "the input k steps earlier, by the backward pass. A linear SSM's g_k follows |Ā|^k of its\n"
      "eigenvalues exactly (for an LTI model it is the kernel K̄_k): it neither vanishes faster "
      "nor\n"
      "explodes; a tanh RNN's falls faster than ρ(W)^k because every tanh' < 1 shrinks it; a\n"
      "selective SSM's is held while Δ_t ≈ 0 and cut off at every large Δ_t.");
  int N = 16, chunk = 64;
  double rho = 0.9, delta_hold = 1e-3, delta_gate = 5.0;
  std::string A_text, gates_text;
  a.add_signal_flags("noise", 256, 0.02);
  auto& c = a.cli();
  c.get_option("--L")->description("Sequence length (lags 0 … L-1), in [8, 65536]");
  c.get_option("--dt")->description("Step Δ of the LTI model (ZOH), finite, in (0, 100]");
  c.add_option("--N", N, "State size of all three models, in [1, 256]")->capture_default_str();
  c.add_option("--A", A_text,
               "The linear models' diagonal A (N values, each < 0); default -(n+1), the diagonal "
               "of HiPPO-LegS (S4D-Real, Mamba's init)");
  c.add_option("--rho", rho, "Spectral radius of the tanh RNN's W, in (0, 1]")
      ->capture_default_str();
  c.add_option("--gates", gates_text,
               "Selective model: lags k (each in [1, L-2], not adjacent) where Δ_t is large; "
               "default 3L/16, 7L/16, 11L/16");
  c.add_option("--delta-hold", delta_hold, "Selective model: Δ_t between gates, in (0, 100]")
      ->capture_default_str();
  c.add_option("--delta-gate", delta_gate, "Selective model: Δ_t at a gate, in (0, 100]")
      ->capture_default_str();
  c.add_option("--chunk", chunk,
               "Checkpoint chunk of the fast float scan backward (G10), in [1, 1048576]")
      ->capture_default_str();
  a.add_threads_flag(1);

  return a.run(argc, argv, [&] {
    app::require_int_range("--N", N, 1, 256);
    app::require_int_range("--L", a.L, 8, 65536);
    app::require_positive("--dt", a.dt);
    require(a.dt <= 100, "--dt must be <= 100, got " + fmt(a.dt));
    // Above 1 a tanh RNN can turn chaotic: its gradient then explodes, and no finite difference
    // (the app's check of BPTT) can follow it.
    require(std::isfinite(rho) && rho > 0 && rho <= 1,
            "--rho must be in (0, 1] (above 1 the tanh RNN can turn chaotic), got " + fmt(rho));
    for (auto [flag, v] : {std::pair{"--delta-hold", delta_hold}, {"--delta-gate", delta_gate}}) {
      app::require_positive(flag, v);
      require(v <= 100, std::string(flag) + " must be <= 100, got " + fmt(v));
    }
    require(delta_hold < delta_gate, "--delta-hold " + fmt(delta_hold) +
                                         " must be < --delta-gate " + fmt(delta_gate) +
                                         " (a gate is a large step, a hold a small one)");
    app::require_int_range("--chunk", chunk, 1, 1 << 20);
    const int L = static_cast<int>(a.L);
    // The linear models' A: by default the diagonal of HiPPO-LegS, A_nn = −(n + 1).
    Vec A = hippo::legs(N).first.diagonal();
    if (!A_text.empty()) {
      const auto v = app::parse_list("--A", A_text);
      require(int(v.size()) == N,
              "--A needs N = " + std::to_string(N) + " values, got " + std::to_string(v.size()));
      for (std::size_t n = 0; n < v.size(); ++n) {
        require(v[n] < 0,
                "--A: value " + std::to_string(n + 1) + " is " + fmt(v[n]) + ", must be < 0");
        A(Eigen::Index(n)) = v[n];
      }
    }
    std::vector<int> gates;  // lags
    if (gates_text.empty()) {
      gates = {3 * L / 16, 7 * L / 16, 11 * L / 16};
    } else {
      for (double v : app::parse_list("--gates", gates_text)) {
        require(v == std::floor(v), "--gates: '" + fmt(v) + "' is not an integer lag");
        require(v >= 1 && v <= L - 2, "--gates: lag " + fmt(v) + " is outside [1, L-2] = [1, " +
                                          std::to_string(L - 2) + "]");
        gates.push_back(int(v));
      }
    }
    std::sort(gates.begin(), gates.end());
    for (std::size_t i = 1; i < gates.size(); ++i) {
      require(gates[i] != gates[i - 1],
              "--gates: lag " + std::to_string(gates[i]) + " is listed twice");
      require(gates[i] - gates[i - 1] >= 2,
              "--gates: lags " + std::to_string(gates[i - 1]) + " and " + std::to_string(gates[i]) +
                  " are adjacent (a hold step must separate two gates)");
    }
    const Signal sig = a.signal();
    require(sig.size() == std::size_t(L),
            "--signal: '" + sig.name + "' has " + std::to_string(sig.size()) +
                " samples, expected L = " + std::to_string(L) + " (lower --L)");
    const Vec u = Eigen::Map<const Vec>(sig.samples.data(), Eigen::Index(sig.samples.size()));
    auto& o = a.out();
    const double eps = 2.220446049250313e-16;
    Eigen::Index slow = 0;
    A.maxCoeff(&slow);
    o << "three models of N = " << N << " states, L = " << L << " steps, input " << sig.name
      << "; g_k = ∂y_{L-1}/∂u_{L-1-k} by the backward pass (lag k = 0 is the last input)\n";

    // ---- 1. LTI: the diagonal SSM with a constant Δ ----------------------------------------
    ScanParams<double> pl;
    ScanInputs<double> il;
    grad::lti_scan_problem(A, a.dt, u, pl, il);
    const Vec g_lti = grad::scan_lag_gradient(pl, il).du;  // (G21) by (G2, G5), dy = e_{L−1}
    // The same model as stage 4 sees it: dense diagonal A, B = C = 1, ZOH, K̄ by powers of Ā.
    const Model dense(Mat(A.asDiagonal()), Vec::Ones(N), RowVec::Ones(N), 0.0, "S4D-Real");
    const Vec K = kernel(make_ssm(dense, a.dt, Method::ZOH), std::size_t(L));
    Vec g_conv;
    {  // the convolution view's backward (G11): du = R (K̄ * R dy), dy one-hot at the last step
      const FFTConv<double> fft(static_cast<std::size_t>(L));
      Signals<double> Kr = K.transpose(), Ur = u.transpose(), dY = Signals<double>::Zero(1, L), dK,
                      dU;
      dY(0, L - 1) = 1.0;
      grad::conv_backward<double>(fft, Kr, Ur, dY, nullptr, dK, dU, nullptr, 1);
      g_conv = dU.row(0).reverse().transpose();
    }
    const Vec lti_slow = grad::slowest_mode_lag_gradient(pl, il);
    const Vec delta_lti = grad::scan_deltas(pl, il);
    o << "LTI SSM: diagonal A_n in [" << fmt(A.minCoeff()) << ", " << fmt(A.maxCoeff())
      << "], B = C = 1, ZOH with Δ = " << fmt(a.dt) << ": |Ā_n| = e^{A_n Δ} in ["
      << app::g6(std::exp(A.minCoeff() * a.dt)) << ", " << app::g6(std::exp(A.maxCoeff() * a.dt))
      << "]\n";
    // Products of at most L rounded factors and sums of N terms: a few L·ε relative to max |K̄|.
    a.check("LTI: g_k by the scan backward (G2, G5) vs K̄_k by powers of Ā (K1)",
            max_rel_diff(g_lti.array(), K.array()), 10.0 * L * eps);
    // Two FFTs of length ~2L: rounding ~ε·log L of the largest term; 1e-12 leaves a wide margin.
    a.check("LTI: g_k by the FFT convolution's backward (G11) vs the scan backward",
            max_rel_diff(g_conv.array(), g_lti.array()), 1e-12);

    app::Table dt({"model", "lags k0→k1", "time ΣΔ", "measured g(k1)/g(k0)", "slowest mode",
                   "fastest mode", "per step: measured", "per step: predicted", "reading"});
    // The LTI tail window: the second half of the lags, or of those before g_k underflows.
    const int t1 = std::min(L, grad::representable_lags(g_lti)) - 1, t0 = t1 / 2;
    require(t1 >= 2, "--dt " + fmt(a.dt) + ": the LTI gradient underflows within " +
                         std::to_string(t1 + 1) + " lags (try a smaller --dt)");
    {
      const auto s = grad::stretch_decay(g_lti, delta_lti, A, t0, t1);
      const double rate = std::log(s.measured) / (t1 - t0), pred = A(slow) * a.dt;
      const double bound = grad::lti_tail_log_rate_bound(A, a.dt, t0, t1);
      dt.add({"LTI", std::to_string(t0) + "→" + std::to_string(t1), app::g3(s.T),
              app::e2(s.measured), app::e2(s.slowest), app::e2(s.fastest), app::g6(std::exp(rate)),
              app::g6(std::exp(pred)), "the tail follows the slowest mode |Ā_s|^k"});
      // G21: the faster modes' leftover weight at k0 bounds the difference; + rounding of logs.
      a.check("LTI: tail decay per step vs slowest eigenvalue log|Ā_s| = A_s Δ (G21 bound)",
              std::fabs(rate - pred), bound + 1e-12);
    }

    // ---- 2. Selective: the same A, Δ_t switched by a marker in the input --------------------
    std::vector<int> gate_t;
    for (int k : gates) gate_t.push_back(L - 1 - k);
    ScanParams<double> ps;
    ScanInputs<double> is;
    grad::gated_scan_problem(A, gate_t, delta_hold, delta_gate, u, ps, is);
    const auto lg = grad::scan_lag_gradient(ps, is);
    const Vec sel_slow = grad::slowest_mode_lag_gradient(ps, is);
    const Vec delta_sel = grad::scan_deltas(ps, is);
    o << "selective SSM: the same A, B, C; Δ_t = softplus(w·m_t + b) from a marker m_t in the "
         "input: Δ = "
      << fmt(delta_gate) << " at lags";
    for (int k : gates) o << " " << k;
    o << ", " << fmt(delta_hold) << " elsewhere\n";
    {
      std::vector<int> extra;
      for (int k : gates)
        for (int d : {-1, 0, 1}) extra.push_back(k + d);
      const auto lags = sample_lags(L, 32, extra);
      const auto fd = grad::scan_lag_gradient_fd(ps, is, lags, 1e-5);
      // y is linear in u: central differences are exact up to rounding, ε·|y|/h ≈ 1e-11.
      a.check("selective: ∂y/∂u by the scan backward (G5) vs central differences",
              rel_at(fd.du, lg.du, lags), 1e-8);
      // Through Δ (G7, G8): truncation h²·y'''/6 ≈ 1e-10·|A|³ plus rounding ε·|y|/h.
      a.check("selective: ∂y/∂Δraw by the scan backward (G7, G8) vs central differences",
              rel_at(fd.ddelta, lg.ddelta, lags), 1e-6);
    }
    {  // the fast float backward with checkpoints every `chunk` steps (G10)
      const auto pf = cast_params<float>(ps);
      const auto inf = cast_inputs<float>(is);
      std::vector<float> dy(std::size_t(L), 0.0f);
      dy.back() = 1.0f;
      const auto gf = selective_scan_backward<float>(pf, inf, dy, {}, chunk, a.threads);
      Vec du(L), dd(L);
      for (int t = 0; t < L; ++t) {
        du(L - 1 - t) = gf.du[std::size_t(t)];
        dd(L - 1 - t) = gf.ddelta[std::size_t(t)];
      }
      // Float rounding of the state and of e^{ΔA} over the steps: tests/test_grad.cpp measures
      // ≤ 2e-5 of each array's max at L in the thousands.
      a.check("selective: fast float backward (chunk " + std::to_string(chunk) +
                  ") vs double reference, du and dΔraw",
              std::max(max_rel_diff(du.array(), lg.du.array()),
                       max_rel_diff(dd.array(), lg.ddelta.array())),
              1e-4);
    }
    {  // stretches: between the gates (held) and across each gate (cut)
      double worst = 0;
      struct Span {
        int k0, k1;
        bool across;  // does the stretch hold a gate?
      };
      std::vector<Span> spans;
      int start = 0;
      for (int k : gates) {
        if (k - 1 > start) spans.push_back({start, k - 1, false});
        spans.push_back({k - 1, k + 1, true});
        start = k + 1;
      }
      if (L - 1 > start) spans.push_back({start, L - 1, false});
      const int representable = grad::representable_lags(lg.du);
      for (auto [k0, k1, across] : spans) {
        if (k1 >= representable) {
          dt.add({across ? "selective, gate" : "selective, hold",
                  std::to_string(k0) + "→" + std::to_string(k1), "", "", "", "", "", "",
                  "not compared: g has left double's range (< 1e-250)"});
          continue;
        }
        const auto s = grad::stretch_decay(lg.du, delta_sel, A, k0, k1);
        worst = std::max(worst, s.outside());
        dt.add({across ? "selective, gate" : "selective, hold",
                std::to_string(k0) + "→" + std::to_string(k1), app::g3(s.T), app::e2(s.measured),
                app::e2(s.slowest), app::e2(s.fastest),
                app::g6(std::pow(s.measured, 1.0 / (k1 - k0))),
                app::g6(std::pow(s.slowest, 1.0 / (k1 - k0))),
                std::string(across ? "cut, ≤ e^(A_s·Δ_gate)" : "held") + "; LTI over these lags ×" +
                    app::g3(g_lti(k1) / g_lti(k0))});
      }
      a.check(
          "selective: every stretch's ratio within [e^{min A·ΣΔ}, e^{max A·ΣΔ}] (G21, log "
          "distance)",
          worst, 1e-9);
    }

    // ---- 3. The tanh RNN: same N, W scaled to spectral radius ρ ----------------------------
    const auto rnn = grad::random_tanh_rnn(N, rho, a.seed);
    const Vec g_rnn = grad::tanh_rnn_lag_gradient(rnn, u);
    const auto trace = grad::tanh_rnn_forward(rnn, u);
    {
      const auto lags = sample_lags(L, 32, {});
      const Vec fd = grad::tanh_rnn_lag_gradient_fd(rnn, u, lags, 1e-5);
      // Truncation h²·y'''/6 with y''' of order ‖U‖³ ≈ N^{3/2}: 1e-10·64 at N = 16; rounding
      // ε·|y|/h ≈ 1e-11. Relative to max |g|.
      a.check("tanh RNN: BPTT (G20) vs central differences", rel_at(fd, g_rnn, lags), 1e-6);
    }
    const int r0 = 1, r1 = std::max(r0 + 1, L / 4);  // the RNN's window: before it underflows
    const double slope = grad::log_slope(g_rnn, r0, r1);
    const double tanh_mean = grad::mean_tanh_slope(trace, r0, r1);
    o << "tanh RNN: h_t = tanh(W h_{t-1} + U u_t), y_t = c·h_t, W random with ρ(W) = " << fmt(rho)
      << "; mean tanh' = 1 - h² over lags " << r0 << "–" << r1 << ": " << app::g3(tanh_mean)
      << "\n";
    dt.add({"tanh RNN (least-squares fit)", std::to_string(r0) + "→" + std::to_string(r1), "—",
            app::e2(std::exp(slope * (r1 - r0))), app::e2(std::pow(rho, r1 - r0)) + " (ρ^Δk)", "—",
            app::g6(std::exp(slope)), app::g6(rho) + " (ρ)",
            "×" + app::g3(std::exp(slope) / rho) + " per step beyond ρ; mean tanh' " +
                app::g3(tanh_mean)});
    o << "\ndecay between two lags against the eigenvalues (G21: with B̄ equal at both lags the "
         "ratio of a linear model lies between its fastest and slowest mode's factor e^{A_n ΣΔ}):\n"
      << dt.text();
    a.table(dt, "decay");
    auto& js = a.summary()["rates"];
    js["lti_measured"] = std::exp(std::log(g_lti(t1) / g_lti(t0)) / (t1 - t0));
    js["lti_predicted"] = std::exp(A(slow) * a.dt);
    js["rnn_measured"] = std::exp(slope);
    js["rnn_rho"] = rho;
    js["rnn_mean_tanh_slope"] = tanh_mean;

    // ---- the figure ------------------------------------------------------------------------
    plot::Figure fig;
    fig.title =
        "The linear SSM's gradient follows |Ā_s|^k of its slowest eigenvalue (dashed), neither "
        "vanishing faster nor exploding; the tanh RNN's falls far below ρ^k; the selective SSM's "
        "is held while Δ_t ≈ 0 and cut at each large Δ_t";
    plot::Panel pg, pd;
    pg.title = "|∂y_{L-1}/∂u_{L-1-k}|, N = " + std::to_string(N) + " states each";
    pg.xlabel = "lag k (input at t = L-1-k)";
    pg.ylabel = "|gradient|";
    pg.logy = true;
    const std::string blue = "lc rgb '#1f77b4'", red = "lc rgb '#d62728'",
                      green = "lc rgb '#2ca02c'";
    Vec rnn_pred(L);
    for (int k = 0; k < L; ++k) rnn_pred(k) = std::fabs(g_rnn(0)) * std::pow(rho, k);
    pg.series = {
        abs_series("LTI SSM (S4D-Real, Δ = " + fmt(a.dt) + ")", g_lti, blue),
        abs_series("  its slowest mode alone: C·B̄·|Ā_s|ᵏ", lti_slow, blue + " dashtype 2"),
        abs_series("selective SSM (Δ_t gated)", lg.du, red),
        abs_series("  its slowest mode alone: C·B̄_t·exp(A_s·ΣΔ)", sel_slow, red + " dashtype 2"),
        abs_series("tanh RNN (ρ(W) = " + fmt(rho) + ")", g_rnn, green),
        abs_series("  |g_0|·ρᵏ (the linear prediction)", rnn_pred, green + " dashtype 2"),
    };
    // The y range follows the linear models; the RNN is allowed to fall off the bottom.
    double lo = 1e300, hi = 0;
    for (const Vec* g : {&g_lti, &lg.du})
      for (Eigen::Index k = 0; k < g->size(); ++k) {
        lo = std::min(lo, std::max(1e-300, std::fabs((*g)(k))));
        hi = std::max(hi, std::fabs((*g)(k)));
      }
    hi = std::max(hi, std::fabs(g_rnn.cwiseAbs().maxCoeff()));
    pg.extra = {"set yrange [" + fmt(lo / 30) + ":" + fmt(hi * 30) + "]", "set key top right",
                "set lmargin 12"};  // both panels: the same lag lines up
    pd.title = "the step Δ_t (the selective model's clock)";
    pd.xlabel = pg.xlabel;
    pd.ylabel = "Δ at the input's time";
    pd.logy = true;
    plot::Series ds{"selective: Δ_t", {}, {}, "steps", red},
        dl{"LTI: Δ", {}, {}, "lines", blue + " dashtype 2"};
    for (int k = 0; k < L; ++k) {
      ds.x.push_back(k);
      ds.y.push_back(delta_sel(L - 1 - k));
      dl.x.push_back(k);
      dl.y.push_back(delta_lti(L - 1 - k));
    }
    pd.series = {ds, dl};
    pd.extra = {"set yrange [" + fmt(std::min(delta_hold, a.dt) / 5) + ":" +
                    fmt(std::max(delta_gate, a.dt) * 5) + "]",
                "set key top right", "set lmargin 12"};
    for (int k : gates) {
      const std::string arrow = "set arrow from " + std::to_string(k) + ", graph 0 to " +
                                std::to_string(k) + ", graph 1 nohead lc rgb '#f4a0a0' dt 3";
      pg.extra.push_back(arrow);
      pd.extra.push_back(arrow);
    }
    fig.panels = {pg, pd};
    fig.width = 1100;
    fig.height = 900;
    a.figure(fig);
  });
}

// ssm-conv — stages 3 and 4: the same discretized model as a recurrence and as a convolution.
#include <cmath>

#include "appkit.hpp"
#include "ssm/convolution.hpp"

int main(int argc, char** argv) {
  using namespace ssm;
  app::App a("conv",
             "Stages 3-4: an LTI model can run as a recurrence x_k = Ā x_{k-1} + B̄ u_k (one\n"
             "step after another) or as a convolution y = K̄ * u with the kernel\n"
             "K̄ = (CB̄, CĀB̄, CĀ²B̄, …) (K1), applied by FFT in O(L log L) (K2). This app runs\n"
             "both on the same input, shows they agree to rounding (double and float), plots\n"
             "K̄, and times recurrence vs direct vs FFT convolution across L.");
  std::string model_name = "random", method_name_ = "bilinear", timing_text = "64,256,1024,4096,16384";
  int N = 16, H = 16;
  double step = 0.05;
  bool no_timing = false;
  a.cli().add_option("--model", model_name, "Model: oscillator, random, stiff")->capture_default_str();
  a.cli().add_option("--N", N, "States for the random and stiff models, in [1, 4096]")->capture_default_str();
  a.cli().add_option("--method", method_name_, "Discretization: euler, backward-euler, bilinear, zoh, gbt, mamba-zoh")->capture_default_str();
  a.cli().add_option("--step", step, "Discretization step Δ of the model (s), finite and > 0")->capture_default_str();
  a.cli().add_option("--timing-L", timing_text, "Lengths for the timing table (each in [1, 2^20])")->capture_default_str();
  a.cli().add_option("--H", H, "Channels timed together in the timing table, in [1, 4096]")->capture_default_str();
  a.cli().add_flag("--no-timing", no_timing, "Skip the timing table");
  a.add_signal_flags("noise", 2048, 0.05);
  a.add_threads_flag(1);

  return a.run(argc, argv, [&] {
    app::require_int_range("--N", N, 1, 4096);
    app::require_int_range("--H", H, 1, 4096);
    app::require_positive("--step", step);
    const Method method = parse_method(method_name_);
    std::vector<long long> timing_L;
    if (!no_timing)
      for (double v : app::parse_list("--timing-L", timing_text)) {
        require(v == std::floor(v), "--timing-L: '" + fmt(v) + "' is not an integer");
        app::require_int_range("--timing-L", static_cast<long long>(v), 1, 1 << 20);
        timing_L.push_back(static_cast<long long>(v));
      }
    const Signal sig = a.signal();
    const Model m = example_model(model_name, N, a.seed);
    const DiscreteSSM<double> s = make_ssm(m, step, method);
    const std::size_t L = sig.size();
    auto& o = a.out();
    o << "model: " << m.name() << ", discretized by " << method_name(method) << " with Δ = " << fmt(step)
      << " s, ρ(Ā) = " << app::g3(spectral_radius(s.Ab)) << "\n"
      << "input: " << sig.name << ", L = " << L << "\n";

    // Double: recurrence (stage 3), direct convolution and FFT convolution (stage 4).
    Signals<double> U(1, static_cast<Eigen::Index>(L)), Yrec, Yfft;
    U.row(0) = Eigen::Map<const RowVec>(sig.samples.data(), static_cast<Eigen::Index>(L));
    unroll_channels<double>({s}, U, Yrec);
    const VecT<double> K = kernel(s, L);
    Signals<double> Krow = K.transpose();
    const VecT<double> Dv = VecT<double>::Constant(1, s.D);
    FFTConv<double> conv(L);
    conv.convolve(Krow, U, Yfft, 1, &Dv);
    const Eigen::ArrayXd yrec = Yrec.row(0).transpose().array(), yfft = Yfft.row(0).transpose().array();
    const bool do_direct = L <= (1u << 15);
    Eigen::ArrayXd ydir(static_cast<Eigen::Index>(L));
    if (do_direct) causal_conv_direct(K.data(), U.row(0).data(), ydir.data(), L, s.D);

    // Float: the same pair in single precision.
    const DiscreteSSM<float> sf = to_float(s);
    Signals<float> Uf = U.cast<float>(), Yrecf, Yfftf;
    unroll_channels<float>({sf}, Uf, Yrecf);
    Signals<float> Kf = kernel(sf, L).transpose();
    const VecT<float> Dvf = VecT<float>::Constant(1, sf.D);
    FFTConv<float> convf(L);
    convf.convolve(Kf, Uf, Yfftf, 1, &Dvf);
    const Eigen::ArrayXd yrecf = Yrecf.row(0).transpose().cast<double>().array();
    const Eigen::ArrayXd yfftf = Yfftf.row(0).transpose().cast<double>().array();

    app::Table agree({"pair", "max |Δy|", "relative", "tolerance"});
    // Tolerances: FFT rounding grows like ε·log M·‖K̄‖₁‖u‖∞ and the recurrence's like ε·L·κ; both
    // stay many orders below 1e-10 (double) and 1e-4 (float) relative to max |y| for stable models.
    auto pair = [&](const std::string& name, const Eigen::ArrayXd& x, const Eigen::ArrayXd& ref, double tol) {
      const double abs_d = max_abs_diff(x, ref), rel = max_rel_diff(x, ref);
      agree.add({name, app::e2(abs_d), app::e2(rel), app::e2(tol)});
      a.check(name + " (relative)", rel, tol);
    };
    pair("recurrence vs FFT convolution, double", yfft, yrec, 1e-10);
    if (do_direct) pair("direct vs FFT convolution, double", yfft, ydir, 1e-10);
    pair("recurrence vs FFT convolution, float", yfftf, yrecf, 1e-4);
    o << "\nagreement (relative = max |Δy| / max |y|):\n" << agree.text();
    o << "float vs double reference: recurrence " << app::e2(max_rel_diff(yrecf, yrec)) << ", FFT "
      << app::e2(max_rel_diff(yfftf, yrec)) << " (relative)\n";
    a.table(agree, "agreement");

    // Timing: H channels sharing the model, each length L, median of 5.
    app::Table timing({"L", "recurrence (ms)", "direct conv (ms)", "FFT conv (ms)", "kernel K̄ (ms)", "fastest"});
    std::vector<double> tl, trec, tdir, tfft;
    if (!timing_L.empty()) {
      o << "\ntiming: H = " << H << " channels, N = " << m.N() << ", double, " << resolve_threads(a.threads)
        << " thread(s); median of 5 (ms per call; direct skipped above L = 8192)\n";
      for (long long Lt : timing_L) {
        const auto n = static_cast<std::size_t>(Lt);
        Signals<double> Ut = Signals<double>::Random(H, Lt), Yt(H, Lt);
        const double t_rec = app::time_median([&] { unroll_channels<double>({s}, Ut, Yt, a.threads); });
        VecT<double> Kt;
        const double t_ker = app::time_median([&] { Kt = kernel(s, n); });
        Signals<double> Kt_rows = Kt.transpose();
        FFTConv<double> ct(n, Planning::Measure);
        const auto spectra = ct.transform_kernels(Kt_rows);
        const double t_fft = app::time_median([&] { ct.apply(spectra, Ut, Yt, a.threads); });
        double t_dir = NAN;
        if (n <= 8192)
          t_dir = app::time_median([&] {
#pragma omp parallel for num_threads(resolve_threads(a.threads))
            for (Eigen::Index h = 0; h < H; ++h) causal_conv_direct(Kt.data(), Ut.row(h).data(), Yt.row(h).data(), n);
          }, 3, 0.0);
        const double best = std::min({t_rec, std::isnan(t_dir) ? INFINITY : t_dir, t_fft});
        timing.add({std::to_string(Lt), app::g3(t_rec * 1e3), app::g3(t_dir * 1e3), app::g3(t_fft * 1e3),
                    app::g3(t_ker * 1e3), best == t_fft ? "FFT" : best == t_rec ? "recurrence" : "direct"});
        tl.push_back(double(Lt));
        trec.push_back(t_rec * 1e3);
        tdir.push_back(t_dir * 1e3);
        tfft.push_back(t_fft * 1e3);
      }
      o << timing.text();
      a.table(timing, "timing");
    }

    // The figure: K̄, both outputs, their difference, the timing.
    plot::Figure fig;
    fig.title = "Stages 3-4 — recurrence and FFT convolution give the same output (difference at rounding level)";
    fig.columns = 2;
    std::vector<double> k_idx(L), kv(K.data(), K.data() + L), t(L);
    for (std::size_t i = 0; i < L; ++i) k_idx[i] = double(i), t[i] = double(i);
    const std::size_t shown = std::min<std::size_t>(L, 400);
    plot::Panel pk{"kernel K̄_k = C Ā^k B̄ (K1): how an impulse at step 0 is felt at step k", "k (steps)", "K̄_k", false, false, {}, {}, {}};
    pk.series.push_back({"K̄", {k_idx.begin(), k_idx.begin() + shown}, {kv.begin(), kv.begin() + shown}, "lines", ""});
    plot::Panel py{"outputs (first " + std::to_string(shown) + " steps)", "k (steps)", "y_k", false, false, {}, {}, {}};
    py.series.push_back({"recurrence", {t.begin(), t.begin() + shown}, {yrec.data(), yrec.data() + shown}, "lines", "lw 4 lc rgb '#9ecae1'"});
    py.series.push_back({"FFT convolution", {t.begin(), t.begin() + shown}, {yfft.data(), yfft.data() + shown}, "lines", "lw 1.5 lc rgb '#D55E00'"});
    plot::Panel pd{"|recurrence − FFT convolution| beside the tolerances (exact zeros not drawn)", "k (steps)", "|Δy_k|", false, true, {}, {}, {}};
    std::vector<double> d64(L), d32(L);
    for (std::size_t i = 0; i < L; ++i) {
      const double e64 = std::fabs(yrec[i] - yfft[i]), e32 = std::fabs(yrecf[i] - yfftf[i]);
      d64[i] = e64 > 0 ? e64 : NAN;
      d32[i] = e32 > 0 ? e32 : NAN;
    }
    const double ymax = Eigen::ArrayXd(yrec).abs().maxCoeff();
    pd.series.push_back({"float", t, d32, "points", "pt 7 ps 0.25"});
    pd.series.push_back({"double", t, d64, "points", "pt 7 ps 0.25"});
    pd.series.push_back({"float tolerance 1e-4·max|y|", {0.0, double(L)}, {1e-4 * ymax, 1e-4 * ymax}, "lines", "dashtype 2 lc rgb '#0072B2'"});
    pd.series.push_back({"double tolerance 1e-10·max|y|", {0.0, double(L)}, {1e-10 * ymax, 1e-10 * ymax}, "lines", "dashtype 2 lc rgb '#D55E00'"});
    plot::Panel pt{"time per call, H = " + std::to_string(H) + " channels (FFT wins as L grows)", "L (steps)", "ms", true, true, {}, {}, {}};
    if (!tl.empty()) {
      pt.series.push_back({"recurrence O(N²L)", tl, trec, "linespoints", "pt 7"});
      pt.series.push_back({"direct conv O(L²)", tl, tdir, "linespoints", "pt 5"});
      pt.series.push_back({"FFT conv O(L log L)", tl, tfft, "linespoints", "pt 9"});
    }
    fig.panels = {pk, py, pd, pt};
    a.figure(fig);
    auto& js = a.summary();
    js["model"] = m.name();
    js["L"] = static_cast<long long>(L);
    js["fft_size"] = static_cast<long long>(conv.fft_length());
  });
}

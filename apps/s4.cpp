// ssm-s4 — stage 6: the S4 kernel from the DPLR form of HiPPO (Cauchy sums + Woodbury), S4D,
// and the S4 layer in convolution and recurrent mode, each checked against stage 4.
#include <cmath>
#include <random>

#include "appkit.hpp"
#include "ssm/hippo.hpp"
#include "ssm/s4.hpp"

namespace {

constexpr double kEps = 2.220446049250313e-16;

// Integers from a list flag, each in [lo, hi] (and even when asked).
std::vector<long long> int_list(const std::string& flag, const std::string& text, long long lo,
                                long long hi, bool even = false) {
  std::vector<long long> out;
  for (double v : ssm::app::parse_list(flag, text)) {
    ssm::require(v == std::floor(v), flag + ": '" + ssm::fmt(v) + "' is not an integer");
    ssm::app::require_int_range(flag, static_cast<long long>(v), lo, hi);
    ssm::require(!even || static_cast<long long>(v) % 2 == 0,
                 flag + " values must be even (the conjugate-pair halving (S5) keeps N/2 pairs), got " +
                     ssm::fmt(v));
    out.push_back(static_cast<long long>(v));
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace ssm;
  app::App a("s4",
             "Stage 6: S4 computes the kernel K̄ = (CB̄, CĀB̄, …) of HiPPO-LegS without powers of Ā.\n"
             "A = V(Λ − P̃P̃*)V* (normal plus rank 1, S1); the generating function of K̄ at the roots\n"
             "of unity is a few Cauchy sums Σ v_n/(g − λ_n) plus a Woodbury correction (S2-S5), and\n"
             "one inverse FFT gives K̄: O(N L) instead of O(N² L). S4D drops the low-rank term (Q1-Q2).\n"
             "This app checks every path against stage 4's powers of Ā, shows how Δ sets the time\n"
             "scale, what HiPPO's structure adds to memory, runs the S4 layer in both modes, and\n"
             "times the three kernels.");
  int N = 64, H = 8;
  long long L = 1024, memory_L = 4096;
  double perturb = 0.0, memory_dt = 0.002;
  std::string dt_text = "0.001,0.01,0.1", timing_N_text = "4,16,64,256", timing_L_text = "1024,4096";
  bool no_timing = false;
  a.cli().add_option("--N", N, "State size of HiPPO-LegS, even, in [2, 1024]")->capture_default_str();
  a.cli().add_option("--L", L, "Kernel and sequence length, in [1, 2^20]")->capture_default_str();
  a.cli().add_option("--dt", dt_text, "Steps Δ for the kernels (each finite, > 0 and <= 100); the layer's channels span their range")->capture_default_str();
  a.cli().add_option("--H", H, "Channels of the S4 layer, in [1, 1024]")->capture_default_str();
  a.cli().add_option("--memory-dt", memory_dt, "Δ of the long-memory comparison (finite, > 0)")->capture_default_str();
  a.cli().add_option("--memory-L", memory_L, "Length of the long-memory comparison, in [1, 2^20]")->capture_default_str();
  a.cli().add_option("--perturb", perturb, "Add a random perturbation of relative size EPS to A before the NPLR (S becomes non-normal; refused above a residual of 1e-10), in [0, 1]")->capture_default_str();
  a.cli().add_option("--timing-N", timing_N_text, "State sizes for the timing table (even, in [2, 1024])")->capture_default_str();
  a.cli().add_option("--timing-L", timing_L_text, "Lengths for the timing table (each in [1, 2^20])")->capture_default_str();
  a.cli().add_flag("--no-timing", no_timing, "Skip the timing table");
  a.add_threads_flag(1);

  return a.run(argc, argv, [&] {
    app::require_int_range("--N", N, 2, 1024);
    require(N % 2 == 0, "--N must be even (the conjugate-pair halving (S5) keeps N/2 pairs), got " + std::to_string(N));
    app::require_int_range("--L", L, 1, 1 << 20);
    app::require_int_range("--H", H, 1, 1024);
    app::require_positive("--memory-dt", memory_dt);
    app::require_int_range("--memory-L", memory_L, 1, 1 << 20);
    app::require_range("--perturb", perturb, 0.0, 1.0);
    std::vector<double> dts = app::parse_list("--dt", dt_text);
    for (double v : dts) {
      app::require_positive("--dt", v);
      require(v <= 100, "--dt values must be <= 100, got " + fmt(v));
    }
    std::vector<long long> timing_N, timing_L;
    if (!no_timing) {
      timing_N = int_list("--timing-N", timing_N_text, 2, 1024, true);
      timing_L = int_list("--timing-L", timing_L_text, 1, 1 << 20);
    }
    const auto Ls = static_cast<std::size_t>(L);
    auto& o = a.out();
    std::mt19937_64 rng(mix_seed(a.seed, 600));
    std::normal_distribution<double> normal;

    // --- (S1) NPLR of HiPPO-LegS ------------------------------------------------------------
    auto [A, B] = hippo::legs(N);
    if (perturb > 0) {
      Mat G(N, N);
      for (Eigen::Index i = 0; i < G.size(); ++i) G.data()[i] = normal(rng);
      A += perturb * A.norm() / G.norm() * G;
    }
    const s4::Nplr d = [&] {
      try {
        return s4::nplr(A, s4::legs_low_rank(N), B);  // refuses a non-normal S
      } catch (const Error& e) {
        if (perturb > 0) throw Error("--perturb " + fmt(perturb) + ": " + e.what());
        throw;
      }
    }();
    const double recon = s4::reconstruction_error(d, A);
    o << "HiPPO-LegS, N = " << N << (perturb > 0 ? " (A perturbed by " + fmt(perturb) + " relative)" : "")
      << "\nNPLR (S1): S = A + PPᵀ has normality residual " << app::e2(d.residual)
      << " (refused above " << app::e2(s4::kNormalityTolerance) << "); ‖V(Λ − P̃P̃*)V* − A‖/‖A‖ = "
      << app::e2(recon) << "\n  Λ: Re λ in [" << app::g6(d.Lambda.real().minCoeff()) << ", "
      << app::g6(d.Lambda.real().maxCoeff()) << "], Im λ in [" << app::g3(d.Lambda.imag().minCoeff())
      << ", " << app::g3(d.Lambda.imag().maxCoeff()) << "]  (N/2 = " << N / 2 << " conjugate pairs kept)\n";
    // Rounding: measured ≈ √N·ε/3 for N = 8 … 1024 (tests); a perturbation adds about its
    // residual (the dropped non-normal part).
    a.check("NPLR: ‖V(Λ − P̃P̃*)V* − A‖/‖A‖ (S1)", recon, 50 * std::sqrt(double(N)) * kEps + 10 * d.residual);

    // --- (S2–S5) DPLR kernels for several Δ vs stage 4 --------------------------------------
    const s4::Dplr m = s4::to_dplr(d);
    // A random readout weighted towards the low Legendre coefficients (C_n ~ N(0, 1)/(n + 1)):
    // a smoother kernel than uniform weights, so its time scale is easy to see.
    RowVec C(N);
    for (int i = 0; i < N; ++i) C(i) = normal(rng) / (i + 1.0);
    const CVec Ct = s4::transform_C(d, C);
    const Model dense(A, B, C, 0.0, "HiPPO-LegS");
    // Tolerance: the issue asks 1e-8 at N = 64, L = 1024; the error grows like N (measured
    // 7e-14 at N = 64, 7e-13 at N = 512, independent of L), so 1000·N·ε (1.4e-11 at N = 64) is
    // the law tested; a perturbation below the refusal threshold adds up to ~1e4× its residual.
    const double ktol = 1000.0 * N * kEps + 1e4 * d.residual;
    app::Table kt({"Δ", "max |K̄|", "steps to |K̄| < 1e-3·max", "DPLR vs powers (double)", "float vs double ref"});
    std::vector<Vec> kernels_dplr, kernels_ref;
    for (double dt : dts) {
      const Vec ref = kernel(make_ssm(dense, dt, Method::Bilinear), Ls);
      const Vec K = s4::dplr_kernel(m, Ct, dt, Ls);
      s4::CauchyKernel<float> genf(m, Ls);
      Signals<float> Kf;
      genf(Vec::Constant(1, dt), CMat(s4::c_prime(m, Ct, dt, Ls).transpose()), Kf, 1);
      const double err = max_rel_diff(K.array(), ref.array());
      const double errf = max_rel_diff(Kf.row(0).transpose().cast<double>().array(), ref.array());
      const double kmax = ref.cwiseAbs().maxCoeff();
      std::size_t last = 0;
      for (std::size_t k = 0; k < Ls; ++k)
        if (std::fabs(ref(static_cast<Eigen::Index>(k))) >= 1e-3 * kmax) last = k;
      kt.add({fmt(dt), app::g3(kmax), last + 1 == Ls ? "> L" : std::to_string(last + 1), app::e2(err), app::e2(errf)});
      a.check("DPLR kernel vs powers of Ā (stage 4), Δ = " + fmt(dt) + " (relative)", err, ktol);
      // Float: 6e-8 rounding growing like N: measured ≤ 7.5e-6 up to N = 512; stage 4's 1e-4.
      a.check("float DPLR kernel vs powers of Ā, Δ = " + fmt(dt) + " (relative)", errf, 1e-4 + 1e4 * d.residual);
      kernels_dplr.push_back(K);
      kernels_ref.push_back(ref);
    }
    o << "\nkernels K̄ (S2-S5: Cauchy sums at the " << Ls / 2 + 1 << " points an inverse real FFT needs,"
      << " Woodbury, bilinear factor, one FFT), L = " << L << ":\n" << kt.text()
      << "Δ sets the time scale: K̄ samples one continuous kernel at t = kΔ, so a 10× smaller Δ\n"
      << "stretches it over 10× more steps (the figure's second panel overlays them in t).\n";
    a.table(kt, "kernels");

    // Any DPLR model (not from HiPPO): random Λ, P̃ (rank 2), B̃, C̃ vs its dense real form.
    {
      const s4::Dplr rm = s4::random_dplr(N / 2, 2, a.seed);
      const CVec rc = s4::random_C(1, N / 2, a.seed + 1).row(0).transpose();
      const double dt = dts[dts.size() / 2];
      const Vec ref = kernel(make_ssm(s4::to_real(rm, rc), dt, Method::Bilinear), Ls);
      a.check("any DPLR model (random Λ, P̃ rank 2, B̃, C̃) vs its dense real form (relative)",
              max_rel_diff(s4::dplr_kernel(rm, rc, dt, Ls).array(), ref.array()), 1000.0 * N * kEps);
    }

    // --- (Q1–Q2) S4D ----------------------------------------------------------------------
    app::Table st({"init", "λ_n", "ZOH vs stage 4", "bilinear vs stage 4"});
    double worst_zoh = 0, worst_bil = 0;
    const double dt_mid = dts[dts.size() / 2];
    const CVec Cd = s4::random_C(1, N / 2, a.seed + 2).row(0).transpose();
    std::vector<s4::Dplr> s4d_models;
    for (auto init : {s4::S4DInit::LegS, s4::S4DInit::Inv, s4::S4DInit::Lin}) {
      const s4::Dplr dm = s4::s4d_init(init, N);
      s4d_models.push_back(dm);
      const Model real = s4::to_real(dm, Cd);
      double e[2];
      int i = 0;
      for (Method me : {Method::ZOH, Method::Bilinear}) {
        const Vec ref = kernel(make_ssm(real, dt_mid, me), Ls);
        e[i++] = max_rel_diff(s4::s4d_kernel(dm, Cd, dt_mid, Ls, me).array(), ref.array());
      }
      worst_zoh = std::max(worst_zoh, e[0]);
      worst_bil = std::max(worst_bil, e[1]);
      st.add({s4::s4d_init_name(init),
              init == s4::S4DInit::LegS ? "Λ of (S1)" : init == s4::S4DInit::Inv ? "−½ + i(N/π)(N/(2n+1) − 1)" : "−½ + iπn",
              app::e2(e[0]), app::e2(e[1])});
    }
    o << "\nS4D (Q1: Vandermonde sum of powers, Q2: inits), Δ = " << fmt(dt_mid) << ":\n" << st.text();
    a.table(st, "s4d");
    // Both sides are L-step recurrences of rounding (anchored powers, mat-vecs): measured ≤ 2e-14.
    a.check("S4D (LegS, Inv, Lin) ZOH kernel vs stage 4 (relative, worst init)", worst_zoh, 1e-11);
    a.check("S4D (LegS, Inv, Lin) bilinear kernel vs stage 4 (relative, worst init)", worst_bil, 1e-11);

    // --- The S4 layer: conv mode vs recurrent mode ----------------------------------------
    {
      const double lo = *std::min_element(dts.begin(), dts.end()), hi = *std::max_element(dts.begin(), dts.end());
      Vec ldt(H);
      for (int h = 0; h < H; ++h) ldt(h) = H == 1 ? lo : lo * std::pow(hi / lo, double(h) / (H - 1));
      const CMat LC = s4::random_C(H, N / 2, a.seed + 3);
      const s4::Layer<double> layer(m, ldt, LC, Vec::Ones(H));
      const s4::Layer<float> layer_f(m, ldt, LC, Vec::Ones(H));
      Signals<double> U(H, static_cast<Eigen::Index>(L)), Yc, Yr;
      for (Eigen::Index i = 0; i < U.size(); ++i) U.data()[i] = normal(rng);
      layer.conv(U, Yc, a.threads);
      layer.recurrent(U, Yr, a.threads);
      const Signals<float> Uf = U.cast<float>();
      Signals<float> Ycf, Yrf;
      layer_f.conv(Uf, Ycf, a.threads);
      layer_f.recurrent(Uf, Yrf, a.threads);
      double e = 0, ef = 0;
      for (int h = 0; h < H; ++h) {
        e = std::max(e, max_rel_diff(Yc.row(h).transpose().array(), Yr.row(h).transpose().array()));
        ef = std::max(ef, max_rel_diff(Ycf.row(h).transpose().cast<double>().array(),
                                       Yrf.row(h).transpose().cast<double>().array()));
      }
      o << "\nS4 layer: H = " << H << " channels, Δ from " << fmt(lo) << " to " << fmt(hi)
        << ", noise input of length " << L << "\n  conv mode (DPLR kernels + stage 4 FFT conv) vs recurrent mode"
        << " (S6: O(N) DPLR step): " << app::e2(e) << " relative (double), " << app::e2(ef) << " (float)\n";
      // Double: kernel error (≤ ktol) plus FFT and L-step rounding: stage 4's 1e-10. Float: 1e-4.
      a.check("S4 layer: conv mode vs recurrent mode, double (relative, worst channel)", e, 1e-10 + ktol);
      a.check("S4 layer: conv mode vs recurrent mode, float (relative, worst channel)", ef, 1e-4 + 1e4 * d.residual);
    }

    // --- Long memory: HiPPO vs a random stable A of the same N -------------------------------
    const auto Lm = static_cast<std::size_t>(memory_L);
    const Model rnd = s4::random_like_legs(N, a.seed);
    const auto [AL, BL] = hippo::legs(N);
    const Model legs_m(AL, BL, C, 0.0, "HiPPO-LegS");
    const Model rnd_m(rnd.A(), rnd.B(), C, 0.0, "random");
    const auto s_legs = make_ssm(legs_m, memory_dt, Method::Bilinear);
    const auto s_rnd = make_ssm(rnd_m, memory_dt, Method::Bilinear);
    const Vec kl = kernel(s_legs, Lm), kr = kernel(s_rnd, Lm);
    const Vec xl = s4::impulse_state_norms(s_legs, Lm), xr = s4::impulse_state_norms(s_rnd, Lm);
    {
      app::Table mt({"model", "|K̄_k|/max at k = L/4", "at k = L/2", "at k = L−1", "‖x_k‖/‖x_0‖ at k = L/2", "at k = L−1"});
      auto row = [&](const std::string& name, const Vec& k, const Vec& x) {
        const double km = k.cwiseAbs().maxCoeff();
        auto at = [&](const Vec& v, std::size_t i) { return std::fabs(v(static_cast<Eigen::Index>(i))); };
        mt.add({name, app::e2(at(k, Lm / 4) / km), app::e2(at(k, Lm / 2) / km), app::e2(at(k, Lm - 1) / km),
                app::e2(at(x, Lm / 2) / x(0)), app::e2(at(x, Lm - 1) / x(0))});
      };
      row("HiPPO-LegS", kl, xl);
      row("random stable A", kr, xr);
      o << "\nlong memory: an impulse at k = 0 read out at step k, Δ = " << fmt(memory_dt) << ", L = " << memory_L
        << "\n(random A: Gaussian, same N, same ‖A‖_F, shifted so its slowest mode decays at LegS's rate;"
        << " same readout C)\n" << mt.text();
      a.table(mt, "memory");
    }

    // --- Timing and accuracy over N and L ---------------------------------------------------
    app::Table tt({"N", "L", "powers of Ā (ms/ch)", "DPLR Cauchy (ms/ch)", "S4D Vandermonde (ms/ch)",
                   "C̄' setup (ms/ch)", "DPLR vs powers", "fastest", "DPLR + setup vs powers"});
    std::vector<double> tN, tpow, tdplr, ts4d, tsetup;
    double worst_units = 0;  // DPLR vs powers over the table, in units of N·ε
    if (!timing_N.empty()) {
      const int Ht = 4;
      const std::size_t Lmax = static_cast<std::size_t>(*std::max_element(timing_L.begin(), timing_L.end()));
      o << "\ntiming: kernel generation for " << Ht << " channels (Δ from 1e-3 to 1e-1), double, "
        << resolve_threads(a.threads) << " thread(s); median of 3, per channel. The C̄' column is the\n"
        << "O(N L) setup C̃(I − Ā^L), paid again whenever Δ or L change; S4 avoids it by learning C̄'\n"
        << "directly. With it counted, the dense powers of Ā win at small N: that is the crossover.\n";
      for (long long Nt : timing_N) {
        const s4::Nplr dn = s4::nplr_legs(static_cast<int>(Nt));
        const s4::Dplr mn = s4::to_dplr(dn);
        const s4::Dplr dg = s4::s4d_init(s4::S4DInit::LegS, static_cast<int>(Nt));
        const auto [An, Bn] = hippo::legs(static_cast<int>(Nt));
        Vec tdt(Ht);
        CMat Cn(Ht, Nt / 2);
        std::vector<DiscreteSSM<double>> ss;
        for (int h = 0; h < Ht; ++h) {
          tdt(h) = 1e-3 * std::pow(100.0, double(h) / (Ht - 1));
          RowVec c(Nt);
          for (int i = 0; i < Nt; ++i) c(i) = normal(rng);
          Cn.row(h) = s4::transform_C(dn, c).transpose();
          ss.push_back(make_ssm(Model(An, Bn, c), tdt(h), Method::Bilinear));
        }
        for (long long Lt : timing_L) {
          const auto n = static_cast<std::size_t>(Lt);
          std::vector<Vec> refs(Ht);
          const double t_pow = app::time_median([&] {
            for (int h = 0; h < Ht; ++h) refs[static_cast<std::size_t>(h)] = kernel(ss[static_cast<std::size_t>(h)], n);
          }, 3, 0.01) / Ht;
          CMat Cp(Ht, Nt / 2);
          const double t_cp = app::time_median([&] {
            for (int h = 0; h < Ht; ++h) Cp.row(h) = s4::c_prime(mn, Cn.row(h).transpose(), tdt(h), n).transpose();
          }, 3, 0.01) / Ht;
          s4::CauchyKernel<double> gen(mn, n);
          Signals<double> K;
          const double t_dplr = app::time_median([&] { gen(tdt, Cp, K, a.threads); }, 3, 0.01) / Ht;
          Signals<double> Kd;
          const double t_s4d = app::time_median([&] {
            s4::s4d_kernels<double>(dg, tdt, Cn, n, Method::Bilinear, Kd, a.threads);
          }, 3, 0.01) / Ht;
          double err = 0;
          for (int h = 0; h < Ht; ++h)
            err = std::max(err, max_rel_diff(K.row(h).transpose().array(), refs[static_cast<std::size_t>(h)].array()));
          worst_units = std::max(worst_units, err / (Nt * kEps));
          const double best = std::min({t_pow, t_dplr, t_s4d});
          tt.add({std::to_string(Nt), std::to_string(Lt), app::g3(t_pow * 1e3), app::g3(t_dplr * 1e3),
                  app::g3(t_s4d * 1e3), app::g3(t_cp * 1e3), app::e2(err),
                  best == t_pow ? "powers" : best == t_dplr ? "DPLR" : "S4D",
                  t_dplr + t_cp < t_pow ? "DPLR faster" : "powers faster"});
          if (n == Lmax) {
            tN.push_back(double(Nt));
            tpow.push_back(t_pow * 1e3);
            tdplr.push_back(t_dplr * 1e3);
            ts4d.push_back(t_s4d * 1e3);
            tsetup.push_back((t_dplr + t_cp) * 1e3);
          }
        }
      }
      o << tt.text();
      a.table(tt, "timing");
      // The law tested in test_s4 (error ≤ 1000·N·ε), applied to every row at once.
      a.check("timing table: DPLR vs powers of Ā, worst over N and L, in units of N·ε", worst_units, 1000.0);
    }

    // --- The figure ---------------------------------------------------------------------------
    plot::Figure fig;
    fig.title = "Stage 6 — S4's DPLR kernel equals stage 4's powers of Ā (error at rounding level); Δ sets the time scale";
    fig.columns = 2;
    std::vector<double> kk(Ls);
    for (std::size_t k = 0; k < Ls; ++k) kk[k] = double(k);
    plot::Panel p1{"K̄_k / max|K̄| (DPLR Cauchy, lines; stage 4's powers of Ā, dots): smaller Δ, longer kernel in steps", "k + 1 (steps)", "K̄_k / max|K̄|", true, false, {}, {}, {}};
    plot::Panel p2{"the same kernels against time t = kΔ, divided by Δ: one continuous kernel", "t = kΔ (time units of 1/λ)", "K̄_k / Δ", true, false, {}, {}, {}};
    plot::Panel p3{"|DPLR − powers of Ā| per k (exact zeros not drawn) beside the tolerance", "k (steps)", "|ΔK̄_k|", false, true, {}, {}, {}};
    double kscale = 0;
    for (std::size_t i = 0; i < dts.size(); ++i) {
      const Vec& K = kernels_dplr[i];
      const Vec& R = kernels_ref[i];
      kscale = std::max(kscale, R.cwiseAbs().maxCoeff());
      const double rmax = R.cwiseAbs().maxCoeff();
      std::vector<double> t(Ls), ks(Ls), dk(Ls), kn(Ls), k1(Ls), px, py;
      for (std::size_t k = 0; k < Ls; ++k) {
        const auto ki = static_cast<Eigen::Index>(k);
        t[k] = (double(k) + 0.5) * dts[i];  // +½: k = 0 stays on the log axis
        ks[k] = K(ki) / dts[i];
        k1[k] = double(k) + 1.0;
        kn[k] = K(ki) / rmax;
        const double e = std::fabs(K(ki) - R(ki));
        dk[k] = e > 0 ? e : NAN;
        // Reference dots spread evenly on the log axis.
        if (k == 0 || std::floor(std::log(double(k) + 1.0) * 12) != std::floor(std::log(double(k)) * 12)) {
          px.push_back(double(k) + 1.0);
          py.push_back(R(ki) / rmax);
        }
      }
      const std::string lab = "Δ = " + fmt(dts[i]);
      static const char* colours[] = {"#0072B2", "#009E73", "#E69F00", "#CC79A7", "#56B4E9", "#D55E00"};
      const std::string lc = std::string(" lc rgb '") + colours[i % 6] + "'";
      p1.series.push_back({lab, k1, kn, "lines", "lw 2" + lc});
      p1.series.push_back({"", px, py, "points", "pt 7 ps 0.35 lc rgb '#000000'"});
      p2.series.push_back({lab, t, ks, "lines", "lw 2" + lc});
      p3.series.push_back({lab, kk, dk, "points", "pt 7 ps 0.25" + lc});
    }
    p3.series.push_back({"tolerance · max|K̄|", {0.0, double(Ls)}, {ktol * kscale, ktol * kscale}, "lines", "dashtype 2 lw 2 lc rgb '#D55E00'"});
    p3.extra.push_back("set yrange [" + fmt(1e-6 * ktol * kscale) + ":" + fmt(30 * ktol * kscale) + "]");
    p3.extra.push_back("set key bottom right");

    const double keep = (xl(static_cast<Eigen::Index>(Lm - 1)) / xl(0)) / (xr(static_cast<Eigen::Index>(Lm - 1)) / xr(0));
    plot::Panel p4{"impulse at k = 0 read out at k (Δ = " + fmt(memory_dt) + "): same slowest rate, HiPPO's state holds " +
                       app::g3(keep) + "× more of it at k = L−1", "k (steps)", "relative size", false, true, {}, {}, {}};
    {
      std::vector<double> km(Lm), al(Lm), ar(Lm), nl(Lm), nr(Lm);
      const double ml = kl.cwiseAbs().maxCoeff(), mr = kr.cwiseAbs().maxCoeff();
      for (std::size_t k = 0; k < Lm; ++k) {
        const auto ki = static_cast<Eigen::Index>(k);
        km[k] = double(k);
        al[k] = std::fabs(kl(ki)) / ml;
        ar[k] = std::fabs(kr(ki)) / mr;
        nl[k] = xl(ki) / xl(0);
        nr[k] = xr(ki) / xr(0);
      }
      std::vector<double> slow(Lm);
      const double rho1 = (1.0 - 0.5 * memory_dt) / (1.0 + 0.5 * memory_dt);  // λ = −1 under (D3)
      for (std::size_t k = 0; k < Lm; ++k) slow[k] = std::pow(rho1, double(k));
      p4.series.push_back({"HiPPO-LegS |K̄_k|/max", km, al, "lines", "lw 0.5 lc rgb '#9ecae1'"});
      p4.series.push_back({"random A |K̄_k|/max", km, ar, "lines", "lw 0.5 lc rgb '#fdae6b'"});
      p4.series.push_back({"HiPPO-LegS ‖Ā^k B̄‖/‖B̄‖ (RMS over readouts C)", km, nl, "lines", "lw 3 lc rgb '#0072B2'"});
      p4.series.push_back({"random A ‖Ā^k B̄‖/‖B̄‖", km, nr, "lines", "lw 3 lc rgb '#D55E00'"});
      p4.series.push_back({"slowest mode of both, (1 − Δ/2)^k/(1 + Δ/2)^k", km, slow, "lines", "dashtype 2 lw 2 lc rgb '#000000'"});
      p4.extra.push_back("set key bottom left");
      p4.extra.push_back("set yrange [1e-6:2]");
    }
    plot::Panel p5{"kernel generation time per channel at L = " + (tN.empty() ? std::string("-") : std::to_string(*std::max_element(timing_L.begin(), timing_L.end()))) + ": O(N²L) vs O(NL)",
                   "N (states)", "ms per channel", true, true, {}, {}, {}};
    if (!tN.empty()) {
      p5.series.push_back({"powers of Ā O(N²L)", tN, tpow, "linespoints", "pt 7"});
      p5.series.push_back({"DPLR Cauchy O(NL)", tN, tdplr, "linespoints", "pt 5"});
      p5.series.push_back({"S4D Vandermonde O(NL)", tN, ts4d, "linespoints", "pt 9"});
      p5.series.push_back({"DPLR + C̄' setup (when Δ or L change)", tN, tsetup, "linespoints", "pt 5 dashtype 2"});
      p5.extra.push_back("set key top left");
    }
    plot::Panel p6{"eigenvalues λ_n (Im > 0 half): S4-LegS's Λ (S1), S4D-Inv, S4D-Lin (Q2); all have Re λ = −½", "n (mode)", "Im λ_n", false, true, {}, {}, {}};
    {
      const char* names[] = {"S4-LegS Λ (S1)", "S4D-Inv", "S4D-Lin"};
      for (std::size_t i = 0; i < 3; ++i) {
        std::vector<double> nx, ny;
        for (int n = 0; n < N / 2; ++n) {
          const double im = s4d_models[i].Lambda(n).imag();
          if (im > 0) {
            nx.push_back(n);
            ny.push_back(im);
          }
        }
        p6.series.push_back({names[i], nx, ny, "linespoints", "pt 7 ps 0.5"});
      }
      p6.extra.push_back("set key top center");
    }
    fig.panels = {p1, p2, p3, p4, p5, p6};
    a.figure(fig);

    auto& js = a.summary();
    js["N"] = N;
    js["L"] = L;
    js["normality_residual"] = d.residual;
    js["nplr_reconstruction_error"] = recon;
  });
}

// ssm-ssd — stage 9: Mamba-2's state space duality, attention beside it, and the scan variants.
// Parses, calls the library, prints, plots.
#include "ssm/ssd.hpp"

#include <algorithm>
#include <cmath>
#include <random>

#include "appkit.hpp"
#include "ssm/attention.hpp"
#include "ssm/mamba.hpp"
#include "ssm/scans.hpp"
#include "ssm/selective.hpp"

namespace {

using namespace ssm;

template <class M>
std::size_t held_bytes(const M& m) {
  return std::size_t(m.size()) * sizeof(typename M::Scalar);
}

}  // namespace

int main(int argc, char** argv) {
  app::App a(
      "ssd",
      "Stage 9: Mamba-2's state space duality. With one scalar A per head the selective SSM is\n"
      "an RNN with an N×P state and, unrolled, a masked attention y = M x with a decaying,\n"
      "N-semiseparable M; the chunked SSD algorithm uses attention inside chunks and the\n"
      "recurrence across them. This app checks every view against the recurrence, plots M,\n"
      "measures memory and time per generated token of attention's KV cache against the SSM\n"
      "states, and shows where the log-space scan loses precision.");
  int L = 256, width = 16, headdim = 4, N = 8, groups = 1, Q = 32, matrix_L = 64;
  int context_max = 65536, d_model = 256;
  bool no_decode = false;
  auto& c = a.cli();
  c.add_option("--L", L, "Checks: sequence length, in [1, 8192]")->capture_default_str();
  c.add_option("--width", width, "Checks: channels d_inner = heads·headdim, in [1, 1024]")
      ->capture_default_str();
  c.add_option("--headdim", headdim, "Checks: head dim P, must divide --width")
      ->capture_default_str();
  c.add_option("--state", N, "Checks: state size N, in [1, 256]")->capture_default_str();
  c.add_option("--groups", groups, "Checks: groups G of (B, C), must divide the heads")
      ->capture_default_str();
  c.add_option("--chunk", Q, "Checks: SSD chunk length Q, >= 1")->capture_default_str();
  c.add_option("--matrix-L", matrix_L, "Heat map of M: tokens, in [4, 512]")->capture_default_str();
  c.add_option("--context-max", context_max,
               "Decode figure: largest context length, a power of two in [64, 2^20]")
      ->capture_default_str();
  c.add_option("--d-model", d_model, "Decode figure: d_model of the three layers, in [16, 1024]")
      ->capture_default_str();
  c.add_flag("--no-decode", no_decode, "Skip the decode (KV cache vs state) measurements");
  a.add_threads_flag(2);

  return a.run(argc, argv, [&] {
    app::require_int_range("--L", L, 1, 8192);
    app::require_int_range("--width", width, 1, 1024);
    app::require_int_range("--headdim", headdim, 1, width);
    require(width % headdim == 0, "--headdim " + std::to_string(headdim) +
                                      " does not divide --width " + std::to_string(width));
    const int H = width / headdim;
    app::require_int_range("--state", N, 1, 256);
    app::require_int_range("--groups", groups, 1, H);
    require(H % groups == 0, "--groups " + std::to_string(groups) + " does not divide the " +
                                 std::to_string(H) + " heads (--width / --headdim)");
    app::require_int_range("--chunk", Q, 1, 1 << 20);
    app::require_int_range("--matrix-L", matrix_L, 4, 512);
    app::require_int_range("--context-max", context_max, 64, 1 << 20);
    require((context_max & (context_max - 1)) == 0,
            "--context-max " + std::to_string(context_max) + " is not a power of two");
    app::require_int_range("--d-model", d_model, 16, 1024);
    auto& o = a.out();

    // ---- 1. Every view of the same model -------------------------------------------------
    SsdShape sh;
    sh.batch = 2;
    sh.L = L;
    sh.H = H;
    sh.P = headdim;
    sh.N = N;
    sh.G = groups;
    SsdParams<double> p;
    SsdInputs<double> in;
    random_ssd_problem(sh, a.seed, p, in, /*initial_state=*/true);
    const auto ref = ssd_reference(p, in);
    o << "views of one model: batch 2, L " << L << ", " << H << " heads × P " << headdim
      << ", N " << N << ", G " << groups << ", initial state; relative = max |Δ| / max |ref|\n";
    app::Table agree({"view", "vs", "relative", "tolerance"});
    auto row = [&](const std::string& name, const std::string& vs, double r, double tol) {
      agree.add({name, vs, app::e2(r), app::e2(tol)});
      a.check(name + " vs " + vs, r, tol);
    };
    // Tolerances: double paths sum the same terms in another order, ~L·ε = 256·1e-16 → 1e-12
    // leaves room for L up to 8192; float paths ~1e-6 (tests/test_ssd.cpp measures ~2e-6 at
    // L 2048), bound 5e-5; a wrong term would be an O(1) error.
    {
      auto p0 = p;
      auto in0 = in;
      p0.D_skip.clear();
      in0.h0.clear();
      const auto r0 = ssd_reference(p0, in0);
      double worst = 0;
      for (int b = 0; b < in.batch; ++b)
        for (int h = 0; h < H; ++h) {
          const Mat M = ssd_matrix(p0, in0, b, h);
          Mat X(L, headdim), Y(L, headdim);
          for (int t = 0; t < L; ++t)
            for (int i = 0; i < headdim; ++i) {
              X(t, i) = in.x[((std::size_t(b) * L + t) * H + h) * headdim + i];
              Y(t, i) = r0.y[((std::size_t(b) * L + t) * H + h) * headdim + i];
            }
          worst = std::max(worst, max_rel_diff((M * X).array(), Y.array()));
        }
      row("matrix y = M x (X2)", "recurrence (no D, h0 = 0)", worst, 1e-12);
    }
    for (int q : std::vector<int>{1, Q, L}) {
      SsdOutputs<double> od;
      ssd_chunked(p, in, od, q, a.threads);
      row("SSD, Q = " + std::to_string(q) + " (double)", "recurrence",
          std::max(max_rel_diff(od.y, ref.y), max_rel_diff(od.h_last, ref.h_last)), 1e-12);
    }
    const auto pf = cast_params<float>(p);
    const auto inf = cast_inputs<float>(in);
    {
      SsdOutputs<float> of;
      ssd_chunked(pf, inf, of, Q, a.threads);
      row("SSD, Q = " + std::to_string(Q) + " (float)", "recurrence",
          std::max(max_rel_diff(of.y, ref.y), max_rel_diff(of.h_last, ref.h_last)), 5e-5);
      ssd_sequential(pf, inf, of, a.threads);
      row("sequential rank-1 updates (float)", "recurrence",
          std::max(max_rel_diff(of.y, ref.y), max_rel_diff(of.h_last, ref.h_last)), 5e-5);
    }
    {  // step mode, one token of both sequences at a time
      SsdOutputs<double> os;
      ssd_stepwise(p, in, os);
      row("step mode, token by token", "recurrence",
          std::max(max_rel_diff(os.y, ref.y), max_rel_diff(os.h_last, ref.h_last)), 1e-12);
    }
    if (groups == 1) {
      ScanParams<double> sp;
      ScanInputs<double> si;
      ssd_as_selective_scan(p, in, sp, si);
      const auto s7 = selective_scan_reference(sp, si);
      row("stage 7 selective scan, A_{d,n} = A_h", "recurrence",
          std::max(max_rel_diff(ssd_from_scan_layout(s7.y, in.batch, L, width), ref.y),
                   max_rel_diff(s7.h_last, ref.h_last)),
          1e-12);
    } else {
      o << "(stage 7's scan shares one B, C per batch: its row needs --groups 1)\n";
    }
    int rank = 0;
    {
      auto p0 = p;
      auto in0 = in;
      p0.D_skip.clear();
      in0.h0.clear();
      const Mat M = ssd_matrix(p0, in0, 0, 0);
      rank = ssd_max_offdiag_rank(M, std::max(1, std::min(Q, L / 2)));
      agree.add({"rank of the blocks M[k:, :k]", "N = " + std::to_string(N),
                 std::to_string(rank), "≤ N"});
      a.check("semiseparable: max rank of M[k:, :k] minus N (≤ 0)", std::max(0, rank - N), 0.0);
    }
    {  // linear attention is SSD with a = 1: q = C, k = B, v = x, Δ = 1
      auto p1 = p;
      auto in1 = in;
      p1.A.assign(std::size_t(H), 0.0);
      p1.delta_softplus = false;
      p1.delta_bias.clear();
      p1.D_skip.clear();
      in1.h0.clear();
      in1.batch = 1;
      in1.x.resize(std::size_t(L) * width);
      in1.delta.assign(std::size_t(L) * H, 1.0);
      in1.B.resize(std::size_t(L) * groups * N);
      in1.C.resize(in1.B.size());
      SsdOutputs<double> os;
      ssd_chunked(p1, in1, os, Q, a.threads);
      // Heads of one group share q, k (as grouped-query attention shares them).
      Signals<double> q(L, H * N), k(L, H * N), v(L, width), y;
      for (int t = 0; t < L; ++t)
        for (int h = 0; h < H; ++h) {
          const int g = h / (H / groups);
          for (int n = 0; n < N; ++n) {
            q(t, h * N + n) = in1.C[(std::size_t(t) * groups + g) * N + n];
            k(t, h * N + n) = in1.B[(std::size_t(t) * groups + g) * N + n];
          }
          for (int i = 0; i < headdim; ++i)
            v(t, h * headdim + i) = in1.x[(std::size_t(t) * H + h) * headdim + i];
        }
      linear_attention(q, k, v, H, y);
      const std::vector<double> ya(y.data(), y.data() + y.size());
      row("linear attention (X5), masked q kᵀ v", "SSD with a = 1", max_rel_diff(os.y, ya), 1e-12);
    }
    {  // attention: step mode with its KV cache vs the whole prompt at once
      const AttentionLayer<double> att(width, std::max(1, H), a.seed);
      std::mt19937_64 rng(mix_seed(a.seed, 5));
      std::normal_distribution<double> nrm;
      Signals<double> U(std::min(L, 512), width), Y, Ys(std::min(L, 512), width);
      for (Eigen::Index i = 0; i < U.size(); ++i) U.data()[i] = nrm(rng);
      att.forward(U, Y);
      auto cache = att.make_cache();
      for (Eigen::Index t = 0; t < U.rows(); ++t) att.step(&U(t, 0), &Ys(t, 0), cache);
      row("attention step mode with KV cache", "attention over the prompt",
          max_rel_diff(Ys.array(), Y.array()), 1e-12);
    }
    {  // the Mamba-2 block: scan (SSD) vs step (recurrence)
      Mamba2Config mc;
      mc.d_model = width;
      mc.expand = 1;
      mc.headdim = headdim;
      mc.d_state = N;
      mc.ngroups = groups;
      mc.chunk = Q;
      const Mamba2Block<double> blk(mc, a.seed);
      std::mt19937_64 rng(mix_seed(a.seed, 6));
      std::normal_distribution<double> nrm;
      Signals<double> U(L, width), Y, Ys(L, width);
      for (Eigen::Index i = 0; i < U.size(); ++i) U.data()[i] = nrm(rng);
      auto s_scan = blk.initial_state();
      blk.forward(U, Y, &s_scan, a.threads);
      auto s = blk.initial_state();
      for (int t = 0; t < L; ++t) blk.step(&U(t, 0), &Ys(t, 0), s);
      row("Mamba-2 block, step mode (X4)", "scan mode (SSD)",
          std::max(max_rel_diff(Ys.array(), Y.array()), max_rel_diff(s.ssm, std::vector<double>(s_scan.ssm))),
          1e-10);  // through in_proj, conv, norm and out_proj: a few more roundings per token
    }
    // The scan variants, on a Mamba-1 problem (A per channel and state).
    {
      ScanParams<double> sp, sb;
      ScanInputs<double> si, sj;
      random_scan_problem<double>({1, std::max(1, width), L, N}, a.seed, sp, si);
      random_scan_problem<double>({1, std::max(1, width), L, N}, a.seed + 1, sb, sj);
      si.h0.clear();
      std::vector<double> yb;
      selective_scan_bidirectional(sp, sb, si, yb, a.threads);
      // The truth: the forward reference plus the anti-causal reference, gated once.
      auto nz = si;
      nz.z.clear();
      const auto f = selective_scan_reference(sp, nz);
      const auto bwd = selective_scan_anticausal_reference(sb, nz);
      std::vector<double> yt(f.y.size());
      for (std::size_t i = 0; i < yt.size(); ++i) {
        const double z = si.z[i];
        yt[i] = (f.y[i] + bwd.y[i]) * z / (1.0 + std::exp(-z));
      }
      row("bidirectional scan (X6)", "forward + anti-causal references", max_rel_diff(yb, yt), 1e-12);
      ScanOutputs<double> ol;
      selective_scan_logspace(sp, si, ol);
      const auto rs = selective_scan_reference(sp, si);
      row("log-space scan (X7, double)", "sequential reference", max_rel_diff(ol.y, rs.y), 1e-9);
      ScanOutputs<double> obl;
      const ScanCounts cnt = selective_scan_blelloch(sp, si, obl);
      row("Blelloch scan (X8)", "sequential reference", max_rel_diff(obl.y, rs.y), 1e-12);
      std::vector<ScanPair<double>> pairs2(static_cast<std::size_t>(L));
      const ScanCounts hs = hillis_steele_scan(pairs2);
      o << agree.text();
      a.table(agree, "checks");
      o << "\nscans over L = " << L << " steps: sequential " << std::max(0, L - 1)
        << " combines in " << std::max(0, L - 1) << " dependent steps; Blelloch " << cnt.combines
        << " combines in " << cnt.depth << " levels; Hillis–Steele " << hs.combines
        << " combines in " << hs.depth << " levels\n";
      auto& js = a.summary()["scan_counts"];
      js["L"] = L;
      js["blelloch_combines"] = cnt.combines;
      js["blelloch_depth"] = cnt.depth;
      js["hillis_steele_combines"] = hs.combines;
      js["hillis_steele_depth"] = hs.depth;
    }
    a.summary()["offdiag_rank"] = rank;

    // ---- 2. The matrix M as a heat map -----------------------------------------------------
    {
      SsdShape ms;
      ms.batch = 1;
      ms.L = matrix_L;
      ms.H = 1;
      ms.P = 1;
      ms.N = N;
      SsdParams<double> mp;
      SsdInputs<double> mi;
      random_ssd_problem(ms, a.seed + 2, mp, mi);
      mp.A[0] = -1.0;
      // Δ mostly small, with a few large steps: each large Δ_t forgets the past at t.
      std::mt19937_64 rng(mix_seed(a.seed, 7));
      std::uniform_real_distribution<double> u01(0, 1);
      mp.delta_softplus = false;
      mp.delta_bias.clear();
      for (auto& d : mi.delta) d = u01(rng) < 0.08 ? 3.0 : 0.03;
      const Mat M = ssd_matrix(mp, mi, 0, 0);
      plot::Image img, decay;
      for (int j = 0; j < matrix_L; ++j) img.x.push_back(j);
      img.y = img.x;
      // Above the diagonal M = 0 (causal); below 1e-12 is drawn as 1e-12 too: one floor colour.
      const double floor10 = -12;
      img.z = Mat::Constant(matrix_L, matrix_L, floor10);
      decay = img;
      double cum = 0;
      std::vector<double> cs(static_cast<std::size_t>(matrix_L));
      for (int t = 0; t < matrix_L; ++t) cs[t] = (cum += mi.delta[t] * mp.A[0]);
      for (int t = 0; t < matrix_L; ++t)
        for (int s = 0; s <= t; ++s) {
          img.z(t, s) = std::max(floor10, std::log10(std::fabs(M(t, s))));
          decay.z(t, s) = std::max(floor10, (cs[t] - cs[s]) / std::log(10.0));  // log10 L[t, s]
        }
      img.zlabel = "log10 |M[t, s]|";
      decay.zlabel = "log10 L[t, s]";
      plot::Figure fig;
      fig.title =
          "y = M x, M = L ∘ (C Bᵀ) Δ: zero above the diagonal (causal); a large Δ_s writes its "
          "token (a bright column) and fades all that came before (a step down below row s)";
      fig.columns = 2;
      plot::Panel p1, p2;
      p1.title = "the matrix M of one head (N = " + std::to_string(N) + ")";
      p2.title = "its decay mask L[t, s] = exp(Σ_{s<r≤t} Δ_r A)";
      for (auto* pp : {&p1, &p2}) {
        pp->xlabel = "input time s";
        pp->ylabel = "output time t";
        pp->extra = {"set xrange [-0.5:" + std::to_string(matrix_L - 1) + ".5]",
                     "set yrange [" + std::to_string(matrix_L - 1) + ".5:-0.5]",
                     "set size ratio -1", "unset key", "set cbrange [-12:*]"};
      }
      p1.images.push_back(img);
      p2.images.push_back(decay);
      fig.panels = {p1, p2};
      fig.width = 1200;
      fig.height = 560;
      a.figure(fig, "matrix");
    }

    // ---- 3. Decode: the KV cache grows, the states do not ---------------------------------
    if (!no_decode) {
      o << "\ndecode, one layer of each at d_model " << d_model
        << " (float): memory held for the context and time to generate one token\n";
      const AttentionLayer<float> att(d_model, std::max(1, d_model / 64), a.seed);
      MambaConfig m1;
      m1.d_model = d_model;
      m1.n_layers = 1;
      const MambaModel<float> mamba1(m1, a.seed);
      Mamba2Config m2;
      m2.d_model = d_model;
      m2.headdim = 64;
      m2.d_state = 128;
      const Mamba2Block<float> mamba2(m2, a.seed);
      std::mt19937_64 rng(mix_seed(a.seed, 8));
      std::normal_distribution<float> nrm;
      const std::size_t dms = static_cast<std::size_t>(d_model);
      std::vector<float> tok(dms), y(dms), kv(dms);
      for (auto& v : tok) v = nrm(rng);
      app::Table dt({"context L", "attention KV cache (bytes)", "2·L·d_model·4", "attention µs/token",
                     "Mamba-1 state (bytes)", "Mamba-1 µs/token", "Mamba-2 state (bytes)",
                     "Mamba-2 µs/token"});
      plot::Series mem_att{"attention: KV cache", {}, {}, "linespoints", ""},
          mem_m1{"Mamba-1: conv window + state", {}, {}, "linespoints", ""},
          mem_m2{"Mamba-2: conv window + state", {}, {}, "linespoints", ""},
          f_att{"2·L·width·4 bytes (formula)", {}, {}, "lines", "dashtype 2 lc rgb '#888888'"},
          t_att{"attention", {}, {}, "linespoints", ""}, t_m1{"Mamba-1", {}, {}, "linespoints", ""},
          t_m2{"Mamba-2", {}, {}, "linespoints", ""};
      auto s1 = mamba1.initial_state();
      auto s2 = mamba2.initial_state();
      const std::size_t b1 = held_bytes(s1[0].conv) + s1[0].ssm.size() * sizeof(float);
      const std::size_t b2 = held_bytes(s2.conv) + s2.ssm.size() * sizeof(float);
      const double us1 = 1e6 * app::time_median([&] { mamba1.step(tok.data(), y.data(), s1); });
      const double us2 = 1e6 * app::time_median([&] { mamba2.step(tok.data(), y.data(), s2); });
      double kv_worst = 0;
      auto cache = att.make_cache();  // grown from one context length to the next
      for (long long ctx = 64; ctx <= context_max; ctx *= 2) {
        cache.reserve(std::size_t(ctx));
        // The context's keys and values; their values do not change the cost of a step.
        while (cache.size() < std::size_t(ctx)) {
          for (auto& v : kv) v = nrm(rng);
          cache.append(kv.data(), kv.data());
        }
        const std::size_t bytes = cache.bytes();  // what the container holds
        kv_worst = std::max(kv_worst, std::fabs(double(bytes) - 2.0 * double(ctx) * d_model * 4));
        cache.reserve(std::size_t(ctx) + 1);  // room for the timed token, allocated untimed
        // Each timed step appends a token; cutting the cache back after it keeps L fixed.
        const std::size_t before = cache.size();
        const double us = 1e6 * app::time_median([&] {
          att.step(tok.data(), y.data(), cache);
          cache.truncate(before);
        });
        dt.add({std::to_string(ctx), std::to_string(bytes), std::to_string(2 * ctx * d_model * 4),
                app::g3(us), std::to_string(b1), app::g3(us1), std::to_string(b2), app::g3(us2)});
        mem_att.x.push_back(double(ctx));
        mem_att.y.push_back(double(bytes));
        f_att.x.push_back(double(ctx));
        f_att.y.push_back(2.0 * double(ctx) * d_model * 4);
        mem_m1.x.push_back(double(ctx));
        mem_m1.y.push_back(double(b1));
        mem_m2.x.push_back(double(ctx));
        mem_m2.y.push_back(double(b2));
        t_att.x.push_back(double(ctx));
        t_att.y.push_back(us);
        t_m1.x.push_back(double(ctx));
        t_m1.y.push_back(us1);
        t_m2.x.push_back(double(ctx));
        t_m2.y.push_back(us2);
      }
      o << dt.text();
      // The formulas beside the measurements (X5): what each state holds, in float.
      const long long f1 = 4LL * m1.d_inner() * (m1.d_state + m1.d_conv),
                      f2 = 4LL * (1LL * m2.nheads() * m2.headdim * m2.d_state +
                                  1LL * m2.conv_dim() * m2.d_conv);
      o << "formulas: KV cache 2·L·d_model·4 B; Mamba-1 d_inner·(N + d_conv)·4 = " << f1
        << " B; Mamba-2 (H·P·N + (d_inner + 2GN)·d_conv)·4 = " << f2 << " B\n";
      a.check("decode: KV cache bytes measured vs 2·L·d_model·4, worst L", kv_worst, 0.0);
      a.check("decode: Mamba-1 state bytes measured vs formula", std::fabs(double(b1) - f1), 0.0);
      a.check("decode: Mamba-2 state bytes measured vs formula", std::fabs(double(b2) - f2), 0.0);
      a.table(dt, "decode");
      plot::Figure fig;
      fig.title = "Generating one token: attention's KV cache and its cost grow with the context; "
                  "an SSM's state does not";
      fig.columns = 2;
      plot::Panel pm, pt;
      pm.title = "memory held for the context (one layer of width " + std::to_string(d_model) + ")";
      pm.xlabel = "context length L (tokens)";
      pm.ylabel = "bytes";
      pm.logx = pm.logy = true;
      pm.series = {mem_att, f_att, mem_m1, mem_m2};
      pt.title = "time to generate one token (1 thread, measured)";
      pt.xlabel = "context length L (tokens)";
      pt.ylabel = "µs per token";
      pt.logx = pt.logy = true;
      pt.series = {t_att, t_m1, t_m2};
      fig.panels = {pm, pt};
      fig.width = 1200;
      fig.height = 520;
      a.figure(fig, "decode");
    }

    // ---- 4. Where the log-space scan loses precision --------------------------------------
    {
      // One channel, one state, A = −1, Δ constant: the total log decay is |a*_L| = Δ·L. The
      // float sequential scan (stage 7's fast scan) on the same input is the baseline.
      const std::vector<int> lens = {64, 1024, 16384};
      std::vector<plot::Series> lf;
      for (int len : lens)
        lf.push_back({"float log-space, b > 0, L = " + std::to_string(len), {}, {}, "linespoints", ""});
      plot::Series lneg{"float log-space, b of both signs (complex log), L = 16384", {}, {},
                        "linespoints", "dashtype 2"},
          seq{"float sequential scan, L = 16384", {}, {}, "linespoints", ""},
          dbl{"double log-space, b > 0, L = 16384", {}, {}, "linespoints", ""},
          pred{"ε(float) · |a*|", {}, {}, "lines", "dashtype 3 lc rgb '#888888'"};
      app::Table lt({"Δ", "L", "|a*_L|", "float sequential", "float log b>0", "float log b±",
                     "double log b>0", "double log b±"});
      for (int li = 0; li < int(lens.size()); ++li)
        for (double d : {1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0}) {
          const int len = lens[std::size_t(li)];
          ScanParams<double> sp;
          sp.D = 1;
          sp.N = 1;
          sp.A = {-1.0};
          sp.delta_softplus = false;
          ScanInputs<double> si;
          si.L = len;
          si.delta.assign(std::size_t(len), d);
          si.B.assign(std::size_t(len), 1.0);
          si.C.assign(std::size_t(len), 1.0);
          std::mt19937_64 rng(mix_seed(a.seed, 9));
          std::normal_distribution<double> nrm;
          si.u.resize(std::size_t(len));
          for (auto& v : si.u) v = nrm(rng);
          double e[2][2], e_seq = 0;  // [b of both signs?][float, double]
          for (int neg = 0; neg < 2; ++neg) {
            auto sj = si;
            if (!neg)
              for (auto& v : sj.u) v = std::fabs(v);
            const auto r = selective_scan_reference(sp, sj);
            ScanOutputs<double> od;
            selective_scan_logspace(sp, sj, od);
            ScanOutputs<float> of;
            const auto spf = cast_params<float>(sp);
            const auto sjf = cast_inputs<float>(sj);
            selective_scan_logspace(spf, sjf, of);
            e[neg][0] = max_rel_diff(of.y, r.y);
            e[neg][1] = max_rel_diff(od.y, r.y);
            if (!neg) {
              selective_scan(spf, sjf, of, 1);
              e_seq = max_rel_diff(of.y, r.y);
            }
          }
          const double decay = d * len;
          lt.add({app::g3(d), std::to_string(len), app::g3(decay), app::e2(e_seq),
                  app::e2(e[0][0]), app::e2(e[1][0]), app::e2(e[0][1]), app::e2(e[1][1])});
          lf[std::size_t(li)].x.push_back(decay);
          lf[std::size_t(li)].y.push_back(e[0][0]);
          if (len == lens.back()) {
            lneg.x.push_back(decay);
            lneg.y.push_back(e[1][0]);
            seq.x.push_back(decay);
            seq.y.push_back(std::max(e_seq, 1e-17));  // exact zeros would vanish on a log axis
            dbl.x.push_back(decay);
            dbl.y.push_back(std::max(e[0][1], 1e-17));
          }
        }
      for (double x : {0.05, 2e6}) {
        pred.x.push_back(x);
        pred.y.push_back(6e-8 * x);
      }
      o << "\nlog-space scan (X7): relative error against the sequential double scan, one "
           "channel, A = -1, Δ constant, |a*_L| = Δ·L\n"
        << lt.text();
      a.table(lt, "logspace");
      plot::Figure fig;
      fig.title = "The log-space scan in float: its error grows with L and, once the decay is "
                  "large, with |a*| itself (the exponent is a difference of two numbers of size "
                  "|a*|); the sequential scan does not";
      plot::Panel pp;
      pp.xlabel = "total log decay |a*_L| = Δ·|A|·L";
      pp.ylabel = "max |y_log - y| / max |y|";
      pp.logx = pp.logy = true;
      pp.series = lf;
      pp.series.insert(pp.series.end(), {lneg, seq, dbl, pred});
      pp.extra = {"set key top left", "set yrange [1e-17:10]"};
      fig.panels = {pp};
      fig.width = 1000;
      fig.height = 620;
      a.figure(fig, "logspace");
    }
  });
}

// ssm/vmath.hpp — SIMD packs and the vectorized exp, exp2, log1p, softplus and silu that the
// fast selective scan (stage 7) is built on, and the normal CDF of S4D's GELU (stage 8b).
//
// Why hand-written: the scan evaluates one exp per element (Ā = e^{ΔA}, M2), 50 million of them
// for one Mamba layer at L = 2048; a scalar expf runs at ~0.5 G/s per core, a vectorized one
// at several G/s, and the scan is bound by exactly this. GCC does not vectorize std::exp without
// -ffast-math (and then only through glibc's libmvec), so the project writes its own, accurate
// one and tests it against std::exp (tests/test_vmath.cpp).
//
// Portable by construction: a Pack<T> is a GCC/Clang vector extension of 64 bytes (16 floats
// or 8 doubles). With AVX-512 each pack is one zmm register; compiled for AVX2, SSE or NEON the
// compiler splits it into 2 or 4 native vectors, with no change to this source (the test
// test_vmath_portable builds it for x86-64-v2, i.e. SSE4.2 only, and checks the same bounds).
//
// The method (Cody–Waite range reduction, then a polynomial, then scaling by 2^k):
//   e^x = 2^k · e^r,  k = round(x / ln2),  r = x − k·ln2 ∈ [−ln2/2, ln2/2]
//   2^x = 2^k · 2^f,  k = round(x),        f = x − k   ∈ [−1/2, 1/2]
// e^r and 2^f are polynomials fitted by Chebyshev interpolation (mpmath.chebyfit; the script
// scripts/fit_exp_poly.py prints them): degree 6 for float (max abs error 2.0e-9 on the
// interval, 1/30 of float's half-ulp) and degree 11 for double (3.2e-18). k·ln2 is subtracted in
// two parts (ln2 split into a leading part and a correction, each applied with one FMA) so r keeps
// full precision even for |x| ≈ 88. The rounding k = round(x) uses the "magic number" trick: adding
// 1.5·2^23 (float) or 1.5·2^52 (double) pushes the fraction out of the mantissa, and the
// integer k is then in the low mantissa bits, from which 2^k is built by a shift into the
// exponent field.
//
// Two ways to finish: with AVX-512 (F + DQ), vreduceps gives f = x − round(x) exactly in one
// instruction and vscalefps multiplies by 2^k with correct overflow, gradual underflow and
// infinities, so exp2 is 9 instructions per 16 floats with no clamping; elsewhere (the portable
// path) x is clamped, rounded with the magic number and 2^k built in the exponent bits.
//
// Measured accuracy (tests/test_vmath.cpp, against the C library in long double over dense
// sweeps; eps = 2^−23 for float, 2^−52 for double; test bound 1.5 eps):
//                      AVX-512 path                      portable path (x86-64-v2)
//   float  exp        8.9e-8  (0.75 eps) on [−87.3, 88.3]     1.1e-7  (0.94 eps)
//   float  exp2       8.1e-8  (0.68 eps) on [−126, 127]       1.0e-7  (0.87 eps)
//   double exp        1.5e-16 (0.66 eps) on [−708, 709]       1.9e-16 (0.86 eps)
//   double exp2       1.4e-16 (0.61 eps) on [−1022, 1023]     1.8e-16 (0.80 eps)
// and log1p ≤ 2.2 eps, softplus ≤ 2.1 eps, silu ≤ 1.4 eps (bound 3 eps). Beyond the ranges the
// results saturate to 0 (portable: below 2^−127; AVX-512: after the subnormals) and +inf; NaN
// gives NaN.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace ssm::simd {

#if !defined(__GNUC__)
#error "ssm/vmath.hpp needs GCC or Clang vector extensions"
#endif

using f32x16 = float __attribute__((vector_size(64)));
using f64x8 = double __attribute__((vector_size(64)));
using u32x16 = std::uint32_t __attribute__((vector_size(64)));
using u64x8 = std::uint64_t __attribute__((vector_size(64)));
using i32x16 = std::int32_t __attribute__((vector_size(64)));
using i64x8 = std::int64_t __attribute__((vector_size(64)));

// True when this translation unit was compiled with the AVX-512 instructions the fast paths use.
constexpr bool defined_avx512() {
#if defined(__AVX512F__) && defined(__AVX512DQ__)
  return true;
#else
  return false;
#endif
}

// Pack<T>: 64 bytes of T, the unit the fast scan works on (one AVX-512 register).
template <class T>
struct PackOf;
template <>
struct PackOf<float> {
  using type = f32x16;
  using bits = u32x16;
  static constexpr int lanes = 16;
};
template <>
struct PackOf<double> {
  using type = f64x8;
  using bits = u64x8;
  static constexpr int lanes = 8;
};
template <class T>
using Pack = typename PackOf<T>::type;
template <class T>
inline constexpr int kLanes = PackOf<T>::lanes;

// The element type of a pack.
template <class V>
using Elem = std::remove_cv_t<std::remove_reference_t<decltype(std::declval<V>()[0])>>;

template <class V>
inline V splat(Elem<V> s) {
  return V{} + s;  // the scalar is broadcast to every lane
}
template <class V>
inline V load(const Elem<V>* p) {  // unaligned
  V v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <class V>
inline void store(Elem<V>* p, V v) {  // unaligned
  std::memcpy(p, &v, sizeof v);
}
// min and max that let a NaN in `a` through. GCC does not turn the generic form into one
// vminps/vmaxps (IEEE corner cases), so AVX-512 builds use the instruction directly: x86's
// max(b, a) returns its second operand when either is NaN.
template <class V>
inline V vmin(V a, V b) {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<V, f32x16>) return _mm512_mask_min_ps(b, 0xFFFF, b, a);
  if constexpr (std::is_same_v<V, f64x8>) return _mm512_mask_min_pd(b, 0xFF, b, a);
#endif
  return b < a ? b : a;
}
template <class V>
inline V vmax(V a, V b) {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<V, f32x16>) return _mm512_mask_max_ps(b, 0xFFFF, b, a);
  if constexpr (std::is_same_v<V, f64x8>) return _mm512_mask_max_pd(b, 0xFF, b, a);
#endif
  return b > a ? b : a;
}
template <class V>
inline Elem<V> hsum(V v) {
  Elem<V> s = 0;
  for (int i = 0; i < static_cast<int>(sizeof(V) / sizeof(Elem<V>)); ++i) s += v[i];
  return s;
}

namespace detail {

template <class T>
struct ExpConst;

template <>
struct ExpConst<float> {
  using bits_t = u32x16;
  static constexpr float magic = 12582912.0f;  // 1.5·2^23
  static constexpr int mant = 23, bias = 127;
  static constexpr float log2e = 1.44269504088896341f;
  static constexpr float ln2_hi = 0.693145751953125f;        // ln2 to 16 bits: k·ln2_hi exact
  static constexpr float ln2_lo = 1.428606765330187045e-6f;  // ln2 − ln2_hi
  // exp2 clamps x to [lo2, hi2]: k = round(x) then lies in [−127, 128], i.e. a biased
  // exponent k + 127 in [0, 255]: 0 builds 2^k = 0 (flush), 255 builds +inf.
  static constexpr float lo2 = -127.0f, hi2 = 128.0f;
  // e^r on [−ln2/2, ln2/2], degree 6 (Chebyshev fit; max abs error 2.0e-9).
  static constexpr float pe[] = {1.0f,
                                 1.0000000377162138f,
                                 0.50000000471177577f,
                                 0.16666415514653275f,
                                 0.041666352896775157f,
                                 0.0083751263981533357f,
                                 0.0013941108433972675f};
  // 2^f on [−1/2, 1/2], degree 6 (Chebyshev fit; max abs error 2.0e-9).
  static constexpr float p2[] = {1.0f,
                                 0.69314720670283260f,
                                 0.24022650922288758f,
                                 0.055503272266703021f,
                                 0.0096180566785246381f,
                                 0.0013400428177615838f,
                                 0.00015461444698569129f};
};

template <>
struct ExpConst<double> {
  using bits_t = u64x8;
  static constexpr double magic = 6755399441055744.0;  // 1.5·2^52
  static constexpr int mant = 52, bias = 1023;
  static constexpr double log2e = 1.4426950408889634074;
  static constexpr double ln2_hi = 0.693147180369123816490;     // 32 leading bits of ln2
  static constexpr double ln2_lo = 1.90821492927058770002e-10;  // ln2 − ln2_hi
  static constexpr double lo2 = -1023.0, hi2 = 1024.0;
  // e^r on [−ln2/2, ln2/2], degree 11 (Chebyshev fit; max abs error 3.2e-18).
  static constexpr double pe[] = {1.0,
                                  0.99999999999999999976,
                                  0.50000000000000183855,
                                  0.16666666666666680806,
                                  0.041666666666488095495,
                                  0.0083333333333196006109,
                                  0.0013888888952314774652,
                                  0.00019841269890047113707,
                                  0.000024801485482328492419,
                                  2.7557240918578969823e-6,
                                  2.7632639639041029749e-7,
                                  2.5110037605963777712e-8};
  // 2^f on [−1/2, 1/2], degree 11 (Chebyshev fit; max abs error 3.2e-18).
  static constexpr double p2[] = {1.0,
                                  0.69314718055994530925,
                                  0.24022650695910159567,
                                  0.055504108664821627039,
                                  0.0096181291075872566681,
                                  0.0013333558146406470697,
                                  0.00015403530463724354209,
                                  0.000015252733841556772589,
                                  1.3215432535912376166e-6,
                                  1.0178057087733941105e-7,
                                  7.0741942972885210056e-9,
                                  4.455817908336064493e-10};
};

// Horner's rule, highest coefficient first; the compiler turns each step into one FMA.
template <class V, std::size_t M>
inline V horner(V x, const Elem<V> (&c)[M]) {
  V p = splat<V>(c[M - 1]);
  for (std::size_t i = M - 1; i-- > 0;) p = p * x + c[i];
  return p;
}

// 2^k for the integer k held in the low mantissa bits of t = k + magic (k + bias in
// [0, 2·bias + 1]): the biased exponent shifted into place. Bits above the exponent field
// (the magic number's own bits) are shifted out.
template <class V>
inline V pow2_from_magic(V t) {
  using C = ExpConst<Elem<V>>;
  using Bits = typename C::bits_t;
  Bits b;
  std::memcpy(&b, &t, sizeof b);
  b = (b + static_cast<Elem<Bits>>(C::bias)) << C::mant;
  V s;
  std::memcpy(&s, &b, sizeof s);
  return s;
}

}  // namespace detail

// 2^x lane by lane. See the header comment for accuracy and range.
template <class V>
inline V exp2(V x) {
  using T = Elem<V>;
  using C = detail::ExpConst<T>;
#if defined(__AVX512F__) && defined(__AVX512DQ__)
  // AVX-512 has both halves of the method as instructions: vreduceps gives f = x − round(x)
  // exactly, vscalefps multiplies by 2^k with correct overflow, underflow (gradual, into the
  // subnormals) and infinities, so no clamping is needed: 9 instructions per pack. (vreduce
  // returns 0 for ±inf, so k = ±inf and the result is +inf or 0; NaN stays NaN. The masked
  // forms, all lanes on, avoid a false GCC 12 warning in the unmasked intrinsics, PR 105593.)
  if constexpr (std::is_same_v<V, f32x16>) {
    const V f =
        _mm512_mask_reduce_ps(x, 0xFFFF, x, 0x08);  // round to nearest, keep 0 fraction bits
    const V p = detail::horner(f, C::p2);
    return _mm512_mask_scalef_ps(p, 0xFFFF, p, x - f);
  } else if constexpr (std::is_same_v<V, f64x8>) {
    const V f = _mm512_mask_reduce_pd(x, 0xFF, x, 0x08);
    const V p = detail::horner(f, C::p2);
    return _mm512_mask_scalef_pd(p, 0xFF, p, x - f);
  }
#endif
  x = vmin(vmax(x, splat<V>(C::lo2)), splat<V>(C::hi2));  // NaN passes through both
  const V t = x + C::magic;  // round to nearest: k sits in t's low mantissa bits
  const V k = t - C::magic;  // k as a floating-point integer
  const V f = x - k;         // f in [−1/2, 1/2], exact
  return detail::horner(f, C::p2) * detail::pow2_from_magic(t);
}

// e^x lane by lane. See the header comment for accuracy and range.
template <class V>
inline V exp(V x) {
  using T = Elem<V>;
  using C = detail::ExpConst<T>;
#if defined(__AVX512F__) && defined(__AVX512DQ__)
  if constexpr (std::is_same_v<V, f32x16> || std::is_same_v<V, f64x8>) {
    // Clamp to where e^x is 0 or +inf anyway (keeps k·ln2 finite), then as in exp2.
    constexpr T lo = std::is_same_v<T, float> ? T(-104) : T(-746);
    constexpr T hi = std::is_same_v<T, float> ? T(89) : T(710);
    x = vmin(vmax(x, splat<V>(lo)), splat<V>(hi));
    const V y = x * C::log2e;
    V f;
    if constexpr (std::is_same_v<T, float>)
      f = _mm512_mask_reduce_ps(y, 0xFFFF, y, 0x08);
    else
      f = _mm512_mask_reduce_pd(y, 0xFF, y, 0x08);
    const V k = y - f;                                // round(x / ln2)
    const V r = (x - k * C::ln2_hi) - k * C::ln2_lo;  // x − k·ln2, |r| ≲ ln2/2
    const V p = detail::horner(r, C::pe);
    if constexpr (std::is_same_v<T, float>)
      return _mm512_mask_scalef_ps(p, 0xFFFF, p, k);
    else
      return _mm512_mask_scalef_pd(p, 0xFF, p, k);
  }
#endif
  // Clamp so that k = round(x·log2e) stays in [−bias, bias + 1] as in exp2.
  x = vmin(vmax(x, splat<V>(C::lo2 / C::log2e)), splat<V>(C::hi2 / C::log2e));
  const V t = x * C::log2e + C::magic;
  const V k = t - C::magic;
  V r = x - k * C::ln2_hi;  // exact: k·ln2_hi has few bits and x − k·ln2_hi is small
  r = r - k * C::ln2_lo;    // one rounding, on a number of size ≤ ln2/2
  return detail::horner(r, C::pe) * detail::pow2_from_magic(t);
}

// log(1 + y) lane by lane for finite y > −1, accurate also for tiny |y| (relative error about
// 1 ulp; tested). Write 1 + y = 2^e · m with m in [√½, √2) (e and m read from the bits of
// w = fl(1 + y)); then log(1 + y) = e·ln2 + log(m), and with s = (m − 1) / (m + 1), |s| ≤ 0.172,
// log(m) = 2 atanh(s) = 2s (1 + s²/3 + s⁴/5 + …): 7 terms in float, 13 in double for s² ≤ 0.0295.
// The rounding error of w = fl(1 + y) is recovered exactly (Fast2Sum) and put back into m, so
// log1p(1e-20) is 1e-20 and not 0. inf and NaN give NaN.
template <class V>
inline V log1p(V y) {
  using T = Elem<V>;
  using C = detail::ExpConst<T>;
  using Bits = typename C::bits_t;
  using SBits = std::conditional_t<std::is_same_v<T, float>, i32x16, i64x8>;
  using B = Elem<Bits>;
  const V one = splat<V>(T(1));
  const V w = y + one;
  const V corr = vmin(y, one) - (w - vmax(y, one));  // w + corr = 1 + y exactly (Fast2Sum)
  // Moving the split point of the mantissa from 1 down to √½ (musl's trick): add the bit
  // distance between 1.0 and √½ before reading the exponent, remove it after.
  constexpr B one_bits = B(C::bias) << C::mant;
  constexpr B sqrt_half_bits = std::is_same_v<T, float> ? B(0x3f3504f3u) : B(0x3fe6a09e667f3bcdull);
  constexpr B mant_mask = (B(1) << C::mant) - 1;
  Bits b;
  std::memcpy(&b, &w, sizeof b);
  b += one_bits - sqrt_half_bits;
  using SB = Elem<SBits>;
  // (Vector casts between integer packs of one size reinterpret, lane by lane.)
  const SBits e = (SBits)(b >> C::mant) - SB(C::bias);
  const Bits mb = (b & mant_mask) + sqrt_half_bits;
  const Bits inv_scale_bits = (Bits)(SB(C::bias) - e) << C::mant;
  V m, inv_scale;  // m in [√½, √2); inv_scale = 2^−e
  std::memcpy(&m, &mb, sizeof m);
  std::memcpy(&inv_scale, &inv_scale_bits, sizeof inv_scale);
  // 1 + y = 2^e (m + corr·2^−e): m − 1 is exact (Sterbenz), the correction adds what w lost.
  const V ym = (m - one) + corr * inv_scale;
  const V s = ym / (ym + T(2));
  const V s2 = s * s;
  V p;
  if constexpr (std::is_same_v<T, float>) {
    static constexpr float c[] = {1.0f,     1.0f / 3,  1.0f / 5, 1.0f / 7,
                                  1.0f / 9, 1.0f / 11, 1.0f / 13};
    p = detail::horner(s2, c);
  } else {
    static constexpr double c[] = {1.0,      1.0 / 3,  1.0 / 5,  1.0 / 7,  1.0 / 9,
                                   1.0 / 11, 1.0 / 13, 1.0 / 15, 1.0 / 17, 1.0 / 19,
                                   1.0 / 21, 1.0 / 23, 1.0 / 25};
    p = detail::horner(s2, c);
  }
  const V ef = __builtin_convertvector(e, V);
  return ef * C::ln2_hi + (T(2) * s * p + ef * C::ln2_lo);
}

// |x| lane by lane (clears the sign bit: one instruction).
template <class V>
inline V abs(V x) {
  using Bits = typename PackOf<Elem<V>>::bits;
  Bits b;
  std::memcpy(&b, &x, sizeof b);
  b &= ~(Elem<Bits>(1) << (8 * sizeof(Elem<V>) - 1));
  std::memcpy(&x, &b, sizeof b);
  return x;
}

// softplus(x) = log(1 + e^x) (M1), in the overflow-free form max(x, 0) + log1p(v), v = e^{−|x|}.
// As v is in (0, 1], log1p(v) needs no range reduction: with s = v / (2 + v) ∈ (0, 1/3],
// log1p(v) = 2 atanh(s) = 2s (1 + s²/3 + s⁴/5 + …), truncated where 9^{−k}/(2k+1) is below half
// an ulp (8 terms in float, 18 in double). About 30 instructions per pack in float, half those of
// max(x, 0) + log1p(e^{−|x|}) through the general log1p; relative error ~2 ulp (tested).
template <class V>
inline V softplus(V x) {
  using T = Elem<V>;
  const V v = exp(-abs(x));
  const V s = v / (v + T(2));
  const V s2 = s * s;
  V p;
  if constexpr (std::is_same_v<T, float>) {
    static constexpr float c[] = {2.0f,     2.0f / 3,  2.0f / 5,  2.0f / 7,
                                  2.0f / 9, 2.0f / 11, 2.0f / 13, 2.0f / 15};
    p = detail::horner(s2, c);
  } else {
    static constexpr double c[] = {2.0,      2.0 / 3,  2.0 / 5,  2.0 / 7,  2.0 / 9,  2.0 / 11,
                                   2.0 / 13, 2.0 / 15, 2.0 / 17, 2.0 / 19, 2.0 / 21, 2.0 / 23,
                                   2.0 / 25, 2.0 / 27, 2.0 / 29, 2.0 / 31, 2.0 / 33, 2.0 / 35};
    p = detail::horner(s2, c);
  }
  return vmax(x, splat<V>(T(0))) + s * p;
}

// silu(z) = z · σ(z) = z / (1 + e^{−z}) (M4's gate). For z < −88 (float) e^{−z} = inf and the
// result is −0, the correct limit.
template <class V>
inline V silu(V z) {
  using T = Elem<V>;
  return z / (T(1) + exp(-z));
}

// out[i] = f(a[i], b[i], …) for i < n, with f taking and returning packs V (V = Pack<T>), one
// pack at a time; the tail goes through one zero-padded pack, so every value takes the same
// formula (the same bits wherever it sits in the array). out may be one of the inputs.
template <class V, class F, class... In>
inline void map(Elem<V>* out, std::size_t n, F&& f, const In*... in) {
  constexpr std::size_t W = sizeof(V) / sizeof(Elem<V>);
  std::size_t i = 0;
  for (; i + W <= n; i += W) store(out + i, f(load<V>(in + i)...));
  if (i == n) return;
  const std::size_t r = n - i;
  auto padded = [i, r](const Elem<V>* p) {
    V v{};
    for (std::size_t j = 0; j < r; ++j) v[j] = p[i + j];
    return v;
  };
  const V y = f(padded(in)...);
  for (std::size_t j = 0; j < r; ++j) out[i + j] = y[j];
}

// Φ(y) = ½ erfc(−y/√2), the standard normal CDF of the exact (erf) GELU y·Φ(y) that S4D's
// training layer uses (T2), for float packs. erfc(z) for z = |y|/√2 ≥ 0 is the Chebyshev fit
// of Numerical Recipes (erfcc): erfc(z) ≈ t · exp(−z² + P(t)), t = 1/(1 + z/2), P of degree 9,
// fractional error below 1.05e-7 for every z ≥ 0 in exact arithmetic (checked against the C
// library); Φ(y) = ½ erfc(z) for y < 0 and 1 − ½ erfc(z) for y ≥ 0. In float: ≤ 5 eps relative
// for y ≥ −2, ≤ (4 + y²/2) eps in the left tail (the exp's argument −y²/2 carries its rounding),
// ≤ 2 eps absolute everywhere (tests/test_vmath.cpp); double callers use std::erfc.
inline f32x16 normal_cdf(f32x16 y) {
  static constexpr float c[] = {-1.26551223f, 1.00002368f,  0.37409196f, 0.09678418f,
                                -0.18628806f, 0.27886807f,  -1.13520398f, 1.48851587f,
                                -0.82215223f, 0.17087277f};
  const f32x16 z = abs(y) * 0.70710678118654752440f;
  const f32x16 t = 1.0f / (1.0f + 0.5f * z);
  // −z² = −(y/2)·y: y/2 is exact and the product and sum are one fused multiply-add.
  const f32x16 half_erfc = 0.5f * t * exp(detail::horner(t, c) - (0.5f * y) * y);
  return y < 0.0f ? half_erfc : 1.0f - half_erfc;
}

// Transposes the kLanes × kLanes block held in r (r[i] = row i) in place, so that afterwards
// r[j] holds column j. The fast scan keeps channels in lanes and time along memory rows, so
// every block of inputs and outputs crosses between the two layouts through this.
// AVX-512: 64 register shuffles for 16 × 16 floats (24 for 8 × 8 doubles), in 4 (3) rounds
// that interleave pairs of rows, then pairs of pairs, then 128-bit quarters. Elsewhere a plain
// element loop, which the compiler turns into whatever the target offers.
template <class V>
inline void transpose(V (&r)[sizeof(V) / sizeof(Elem<V>)]) {
#if defined(__AVX512F__)
  // (Masked forms with every lane on: the unmasked intrinsics trip GCC 12's PR 105593.)
  if constexpr (std::is_same_v<V, f32x16>) {
    auto unpacklo_ps = [](__m512 a, __m512 b) { return _mm512_mask_unpacklo_ps(a, 0xFFFF, a, b); };
    auto unpackhi_ps = [](__m512 a, __m512 b) { return _mm512_mask_unpackhi_ps(a, 0xFFFF, a, b); };
    auto unpacklo_pd = [](__m512d a, __m512d b) { return _mm512_mask_unpacklo_pd(a, 0xFF, a, b); };
    auto unpackhi_pd = [](__m512d a, __m512d b) { return _mm512_mask_unpackhi_pd(a, 0xFF, a, b); };
#define SSM_SHUF4(a, b, imm) _mm512_mask_shuffle_f32x4(a, 0xFFFF, a, b, imm)
    __m512 t[16];
    for (int i = 0; i < 8; ++i) {  // t[2i] = (r0 r1 r0 r1 of columns 4k, 4k+1 in quarter k)
      t[2 * i] = unpacklo_ps(r[2 * i], r[2 * i + 1]);
      t[2 * i + 1] = unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int g = 0; g < 4; ++g) {  // r[4g + j]: column 4k + j of rows 4g…4g+3 in quarter k
      const __m512d lo01 = _mm512_castps_pd(t[4 * g]), hi01 = _mm512_castps_pd(t[4 * g + 1]);
      const __m512d lo23 = _mm512_castps_pd(t[4 * g + 2]), hi23 = _mm512_castps_pd(t[4 * g + 3]);
      r[4 * g + 0] = _mm512_castpd_ps(unpacklo_pd(lo01, lo23));
      r[4 * g + 1] = _mm512_castpd_ps(unpackhi_pd(lo01, lo23));
      r[4 * g + 2] = _mm512_castpd_ps(unpacklo_pd(hi01, hi23));
      r[4 * g + 3] = _mm512_castpd_ps(unpackhi_pd(hi01, hi23));
    }
    for (int j = 0; j < 4; ++j) {  // gather quarter k of r[j], r[4+j], r[8+j], r[12+j]
      const __m512 a = SSM_SHUF4(r[j], r[4 + j], 0x88);
      const __m512 b = SSM_SHUF4(r[j], r[4 + j], 0xdd);
      const __m512 c = SSM_SHUF4(r[8 + j], r[12 + j], 0x88);
      const __m512 d = SSM_SHUF4(r[8 + j], r[12 + j], 0xdd);
      t[j] = SSM_SHUF4(a, c, 0x88);       // column j
      t[8 + j] = SSM_SHUF4(a, c, 0xdd);   // column 8 + j
      t[4 + j] = SSM_SHUF4(b, d, 0x88);   // column 4 + j
      t[12 + j] = SSM_SHUF4(b, d, 0xdd);  // column 12 + j
    }
    for (int i = 0; i < 16; ++i) r[i] = t[i];
    return;
#undef SSM_SHUF4
  } else if constexpr (std::is_same_v<V, f64x8>) {
    auto unpacklo_pd = [](__m512d a, __m512d b) { return _mm512_mask_unpacklo_pd(a, 0xFF, a, b); };
    auto unpackhi_pd = [](__m512d a, __m512d b) { return _mm512_mask_unpackhi_pd(a, 0xFF, a, b); };
#define SSM_SHUF2(a, b, imm) _mm512_mask_shuffle_f64x2(a, 0xFF, a, b, imm)
    __m512d t[8];
    for (int i = 0; i < 4; ++i) {  // t[2i + j]: column 2k + j of rows 2i, 2i+1 in quarter k
      t[2 * i] = unpacklo_pd(r[2 * i], r[2 * i + 1]);
      t[2 * i + 1] = unpackhi_pd(r[2 * i], r[2 * i + 1]);
    }
    for (int j = 0; j < 2; ++j) {
      const __m512d a = SSM_SHUF2(t[j], t[2 + j], 0x88);
      const __m512d b = SSM_SHUF2(t[j], t[2 + j], 0xdd);
      const __m512d c = SSM_SHUF2(t[4 + j], t[6 + j], 0x88);
      const __m512d d = SSM_SHUF2(t[4 + j], t[6 + j], 0xdd);
      r[j] = SSM_SHUF2(a, c, 0x88);      // column j
      r[4 + j] = SSM_SHUF2(a, c, 0xdd);  // column 4 + j
      r[2 + j] = SSM_SHUF2(b, d, 0x88);  // column 2 + j
      r[6 + j] = SSM_SHUF2(b, d, 0xdd);  // column 6 + j
    }
#undef SSM_SHUF2
    return;
  }
#endif
  constexpr int W = sizeof(V) / sizeof(Elem<V>);
  for (int i = 0; i < W; ++i)
    for (int j = i + 1; j < W; ++j) {
      const Elem<V> x = r[i][j];
      r[i][j] = r[j][i];
      r[j][i] = x;
    }
}

// The kLanes sums of the rows of the block r: lane i of the result is Σ_c r[i][c]. The scan's
// backward reduces each step's N per-channel terms of dB and dC (G3, G4) this way while they
// are still in registers. AVX-512: a tree that halves the partial sums each round (pairs of
// rows share a register by 256-bit halves, then 128-bit quarters, then 64 and 32 bits), 31
// shuffles and 15 adds for 16 × 16 floats against transpose's 64 shuffles before its adds;
// the last shuffle puts row i in lane i. The sums are taken in a fixed order (the tree's), not
// left to right. Elsewhere a plain element loop.
template <class V>
inline V row_sums(const V (&r)[sizeof(V) / sizeof(Elem<V>)]) {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<V, f32x16>) {
#define SSM_SHUF4(a, b, imm) _mm512_mask_shuffle_f32x4(a, 0xFFFF, a, b, imm)
    __m512 s[8], v[4], w[2];
    for (int i = 0; i < 8; ++i)  // 256-bit halves: rows 2i, 2i + 1
      s[i] = SSM_SHUF4(r[2 * i], r[2 * i + 1], 0x44) + SSM_SHUF4(r[2 * i], r[2 * i + 1], 0xee);
    for (int i = 0; i < 4; ++i)  // 128-bit quarter q: row 4i + q
      v[i] = SSM_SHUF4(s[2 * i], s[2 * i + 1], 0x88) + SSM_SHUF4(s[2 * i], s[2 * i + 1], 0xdd);
#undef SSM_SHUF4
    for (int i = 0; i < 2; ++i) {  // quarter q: rows 8i + q and 8i + 4 + q, two lanes each
      const __m512d x = _mm512_castps_pd(v[2 * i]), y = _mm512_castps_pd(v[2 * i + 1]);
      // (Pairs of floats move as doubles; the sum is of the floats.)
      w[i] = _mm512_castpd_ps(_mm512_mask_unpacklo_pd(x, 0xFF, x, y)) +
             _mm512_castpd_ps(_mm512_mask_unpackhi_pd(x, 0xFF, x, y));
    }
    // Lane 4q + i: row q + 4i.
    const __m512 t = _mm512_mask_shuffle_ps(w[0], 0xFFFF, w[0], w[1], 0x88) +
                     _mm512_mask_shuffle_ps(w[0], 0xFFFF, w[0], w[1], 0xdd);
    const __m512i idx = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    return _mm512_mask_permutexvar_ps(t, 0xFFFF, idx, t);
  } else if constexpr (std::is_same_v<V, f64x8>) {
#define SSM_SHUF2(a, b, imm) _mm512_mask_shuffle_f64x2(a, 0xFF, a, b, imm)
    __m512d s[4], v[2];
    for (int i = 0; i < 4; ++i)  // 256-bit halves: rows 2i, 2i + 1
      s[i] = SSM_SHUF2(r[2 * i], r[2 * i + 1], 0x44) + SSM_SHUF2(r[2 * i], r[2 * i + 1], 0xee);
    for (int i = 0; i < 2; ++i)  // 128-bit quarter q: row 4i + q
      v[i] = SSM_SHUF2(s[2 * i], s[2 * i + 1], 0x88) + SSM_SHUF2(s[2 * i], s[2 * i + 1], 0xdd);
#undef SSM_SHUF2
    // Lane 2q + i: row q + 4i.
    const __m512d t = _mm512_mask_unpacklo_pd(v[0], 0xFF, v[0], v[1]) +
                      _mm512_mask_unpackhi_pd(v[0], 0xFF, v[0], v[1]);
    const __m512i idx = _mm512_setr_epi64(0, 2, 4, 6, 1, 3, 5, 7);
    return _mm512_mask_permutexvar_pd(t, 0xFF, idx, t);
  }
#endif
  constexpr int W = sizeof(V) / sizeof(Elem<V>);
  V out{};
  for (int i = 0; i < W; ++i)
    for (int c = 0; c < W; ++c) out[i] += r[i][c];
  return out;
}

}  // namespace ssm::simd

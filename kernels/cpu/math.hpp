// dredux CPU kernels: element-wise maths for the generated code.
//
// Every op of the formula language is spelled as a call to one of the _dr_*
// functions below (see dredux/codegen/render.py), overloaded for float and
// double. They are inline and free of branches where it matters, so that GCC
// vectorises the kernel's j-loop through them:
//
// * _dr_exp and _dr_log are written here: Cody-Waite range reduction, then a
//   near-minimax polynomial (coefficients from interpolation at Chebyshev
//   nodes in 60-digit arithmetic: kernels/cpu/fit_coefficients.py), then an
//   exact rescaling by powers of two. Special values follow C99 (exp: NaN ->
//   NaN, +inf -> +inf, -inf -> 0, overflow -> +inf, subnormal results; log:
//   x < 0 -> NaN, 0 -> -inf, +inf -> +inf, subnormal x). Measured against
//   NumPy over the whole range (tests/cpu/test_cpu_math.py checks <= 2 ulp):
//   exp <= 0.99 ulp (float and double), log <= 0.91 ulp (float), 1.15 ulp
//   (double).
//   Why not glibc's libmvec (via "#pragma omp declare simd")? Measured here
//   (AVX-512, GCC 12, glibc 2.36): its exp is 17% (float) and 2x (double)
//   faster in a bare loop, but the Gaussian kernel gains 17% in double only;
//   its errors reach 2.5 ulp (expf), 2.8 ulp (exp), 3.9 ulp (logf); it exists
//   for glibc on x86-64 only; and its results would depend on the glibc of
//   each cluster node; these do not depend on the C library.
// * sqrt, floor, round and fabs map to instructions (-fno-math-errno).
// * the other functions call the C library's scalar versions; a loop that
//   uses them is not vectorised, but stays correct.

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

static inline __attribute__((always_inline)) float _dr_bits_to_float(int32_t b) {
    float f;
    std::memcpy(&f, &b, sizeof f);
    return f;
}
static inline __attribute__((always_inline)) int32_t _dr_float_to_bits(float f) {
    int32_t b;
    std::memcpy(&b, &f, sizeof b);
    return b;
}
static inline __attribute__((always_inline)) double _dr_bits_to_double(int64_t b) {
    double f;
    std::memcpy(&f, &b, sizeof f);
    return f;
}
static inline __attribute__((always_inline)) int64_t _dr_double_to_bits(double f) {
    int64_t b;
    std::memcpy(&b, &f, sizeof b);
    return b;
}

// ---------------------------------------------------------------- exp
static inline __attribute__((always_inline)) float _dr_exp(float x) {
    // e^x = 2^k e^r, r = x - k ln2 in [-ln2/2, ln2/2]; 2^k is applied as two
    // factors 2^(k/2) 2^(k - k/2) so that overflow and subnormal results come
    // out right (one rounding) without a branch.
    const float lo = -104.0f, hi = 89.0f;  // e^lo rounds to 0, e^hi to +inf
    float xc = x < lo ? lo : x;  // NaN passes through both clamps
    xc = xc > hi ? hi : xc;
    // adding 1.5 * 2^23 rounds to an integer k, held in the low bits of j
    const float j = xc * 1.44269504088896341f + 12582912.0f;
    const float k = j - 12582912.0f;
    // unsigned arithmetic: NaN inputs give garbage bits here, never overflow
    const int32_t ki = (int32_t)((uint32_t)_dr_float_to_bits(j) - 0x4b400000u);
    float r = k * -0.693145751953125f + xc;  // ln2 split in a short high part ...
    r = k * -1.4286068203094173e-06f + r;    // ... and the rest
    float p = 0.0013941108433972674f;
    p = p * r + 0.008375126398153335f;
    p = p * r + 0.04166635289677516f;
    p = p * r + 0.16666415514653277f;
    p = p * r + 0.5000000047117757f;
    p = p * r + 1.000000037716214f;
    p = p * r + 1.0f;
    const int32_t k1 = ki >> 1;
    const int32_t k2 = ki - k1;
    const float s1 = _dr_bits_to_float((int32_t)((uint32_t)(k1 + 127) << 23));
    const float s2 = _dr_bits_to_float((int32_t)((uint32_t)(k2 + 127) << 23));
    return (p * s1) * s2;
}

static inline __attribute__((always_inline)) double _dr_exp(double x) {
    const double lo = -746.0, hi = 710.0;
    double xc = x < lo ? lo : x;
    xc = xc > hi ? hi : xc;
    const double j = xc * 1.4426950408889634074 + 6755399441055744.0;  // 1.5 * 2^52
    const double k = j - 6755399441055744.0;
    const int64_t ki = (int64_t)((uint64_t)_dr_double_to_bits(j) - 0x4338000000000000ULL);
    double r = k * -0.6931471803691238165 + xc;  // ln2 high part: k * it is exact
    r = k * -1.9082149292705877000e-10 + r;
    double p = 2.5110037605963777e-08;
    p = p * r + 2.763263963904103e-07;
    p = p * r + 2.755724091857897e-06;
    p = p * r + 2.4801485482328494e-05;
    p = p * r + 0.00019841269890047113;
    p = p * r + 0.0013888888952314775;
    p = p * r + 0.008333333333319601;
    p = p * r + 0.0416666666664881;
    p = p * r + 0.1666666666666668;
    p = p * r + 0.5000000000000019;
    p = p * r + 1.0;
    p = p * r + 1.0;
    const int64_t k1 = ki >> 1;
    const int64_t k2 = ki - k1;
    const double s1 = _dr_bits_to_double((int64_t)((uint64_t)(k1 + 1023) << 52));
    const double s2 = _dr_bits_to_double((int64_t)((uint64_t)(k2 + 1023) << 52));
    return (p * s1) * s2;
}

// ---------------------------------------------------------------- log
// x = 2^e m with m in [sqrt(1/2), sqrt(2)), f = m - 1, s = f / (2 + f):
// log(m) = 2 atanh(s) = f - s (f - z P(z)), z = s^2, then + e ln2 (split).
static inline __attribute__((always_inline)) float _dr_log(float x) {
    const bool tiny = x < 1.17549435e-38f;  // subnormal (or <= 0): scale up first
    float xs = tiny ? x * 8388608.0f : x;  // 2^23
    // bias so that the mantissa lands in [sqrt(1/2), sqrt(2)); unsigned arithmetic
    // because x <= 0, inf and NaN (fixed up at the end) give garbage bits here
    const uint32_t shifted = (uint32_t)_dr_float_to_bits(xs) - 0x3f3504f3u;
    const int32_t e = ((int32_t)shifted >> 23) - (tiny ? 23 : 0);
    const float m = _dr_bits_to_float((int32_t)((shifted & 0x007fffffu) + 0x3f3504f3u));
    float f = m - 1.0f;
    float s = f / (2.0f + f);
    float z = s * s;
    float pz = 0.2333058193824189f;
    pz = pz * z + 0.2855081659971155f;
    pz = pz * z + 0.40000121876972f;
    pz = pz * z + 0.6666666655445165f;
    float lm = f - s * (f - z * pz);
    float ef = (float)e;
    float out = ef * 0.693145751953125f + (lm + ef * 1.4286068203094173e-06f);
    const float inf = std::numeric_limits<float>::infinity();
    out = (x == inf) ? inf : out;
    out = (x == 0.0f) ? -inf : out;
    out = (x < 0.0f || x != x) ? std::numeric_limits<float>::quiet_NaN() : out;
    return out;
}

static inline __attribute__((always_inline)) double _dr_log(double x) {
    const bool tiny = x < 2.2250738585072014e-308;
    double xs = tiny ? x * 4503599627370496.0 : x;  // 2^52
    const uint64_t shifted = (uint64_t)_dr_double_to_bits(xs) - 0x3fe6a09e667f3bcdULL;
    const int64_t e = ((int64_t)shifted >> 52) - (tiny ? 52 : 0);
    const double m = _dr_bits_to_double(
        (int64_t)((shifted & 0x000fffffffffffffULL) + 0x3fe6a09e667f3bcdULL));
    double f = m - 1.0;
    double s = f / (2.0 + f);
    double z = s * s;
    double pz = 0.1461658542488862;
    pz = pz * z + 0.15331710618210773;
    pz = pz * z + 0.18182889455674947;
    pz = pz * z + 0.22222211130259878;
    pz = pz * z + 0.2857142862600327;
    pz = pz * z + 0.39999999999899444;
    pz = pz * z + 0.666666666666667;
    double lm = f - s * (f - z * pz);
    double ef = (double)e;
    double out = ef * 0.6931471803691238165 + (lm + ef * 1.9082149292705877000e-10);
    const double inf = std::numeric_limits<double>::infinity();
    out = (x == inf) ? inf : out;
    out = (x == 0.0) ? -inf : out;
    out = (x < 0.0 || x != x) ? std::numeric_limits<double>::quiet_NaN() : out;
    return out;
}

// ---------------------------------------------------------------- the rest
#define _DR_BOTH(name, call)                                                        \
    static inline __attribute__((always_inline)) float name(float x) { return call; } \
    static inline __attribute__((always_inline)) double name(double x) { return call; }
_DR_BOTH(_dr_sqrt, std::sqrt(x))
_DR_BOTH(_dr_rsqrt, 1 / std::sqrt(x))
_DR_BOTH(_dr_abs, std::fabs(x))
_DR_BOTH(_dr_floor, std::floor(x))
_DR_BOTH(_dr_round, std::round(x))
_DR_BOTH(_dr_sin, std::sin(x))
_DR_BOTH(_dr_cos, std::cos(x))
_DR_BOTH(_dr_asin, std::asin(x))
_DR_BOTH(_dr_acos, std::acos(x))
_DR_BOTH(_dr_atan, std::atan(x))
#undef _DR_BOTH
static inline float _dr_pow(float x, float y) { return std::pow(x, y); }
static inline double _dr_pow(double x, double y) { return std::pow(x, y); }
static inline float _dr_atan2(float y, float x) { return std::atan2(y, x); }
static inline double _dr_atan2(double y, double x) { return std::atan2(y, x); }

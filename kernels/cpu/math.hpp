// dredux CPU kernels: element-wise maths for the generated code.
//
// Every op of the formula language is spelled as a call to one of the _dr_*
// functions below (see dredux/codegen/render.py), overloaded for float and
// double. They are inline and free of branches where it matters, so that GCC
// vectorises the kernel's j-loop through them:
//
// * _dr_exp and _dr_log are written here: Cody-Waite range reduction, then a
//   near-minimax polynomial (coefficients from interpolation at Chebyshev
//   nodes in 60-digit arithmetic: kernels/cpu/fit_coefficients.py), then a
//   rescaling by a power of two. Special values follow C99 (exp: NaN -> NaN,
//   +inf -> +inf, -inf -> +0, overflow -> +inf; log: x < 0 -> NaN, 0 -> -inf,
//   +inf -> +inf, subnormal x), except that exp FLUSHES RESULTS BELOW THE
//   SMALLEST NORMAL NUMBER TO +0 (2^-126 in float, 2^-1022 in double), as
//   CUDA does with -ftz: one scaling factor instead of two, ~6 integer ops
//   fewer per call (docs/formulas.md says so; tests/cpu/test_cpu_math.py
//   checks the rule). Measured against NumPy: exp <= 1.49 ulp (float, every
//   input), 1.57 ulp (double, 1.6e8 random inputs), log <= 0.91 ulp (float),
//   1.15 ulp (double); the tests check <= 2 ulp.
//   Why not glibc's libmvec (via "#pragma omp declare simd")? Measured here
//   (AVX-512, GCC 12, glibc 2.36) against the earlier, exact-subnormal
//   version of this exp: its exp was 17% (float) and 2x (double) faster in a
//   bare loop, but the Gaussian kernel gained 17% in double only; its errors
//   reach 2.5 ulp (expf), 2.8 ulp (exp), 3.9 ulp (logf); it exists for glibc
//   on x86-64 only; and its results would depend on the glibc of each
//   cluster node; these do not depend on the C library.
// * sqrt, floor, round and fabs map to instructions (-fno-math-errno).
// * the other functions call the C library's scalar versions; a loop that
//   uses them is not vectorised, but stays correct.

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <new>

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
// e^x = 2^k e^r with k = floor(x log2 e) and r = x - k ln2 in [0, ln2). The
// floor (not the nearest integer) keeps k in [-126, 127] over the whole range
// of normal float results, so that 2^k is ONE factor built by a single shift
// of the bits of j below (a second factor for the extremes would cost ~6
// more integer ops per call). Results below 2^-126 come out as +0 (flush to
// zero: 2^k's exponent field is 0 there); results above the largest float
// as +inf (the field saturates at 255, 2^128 = +inf); NaN gives NaN.
static inline __attribute__((always_inline)) float _dr_exp(float x) {
    // 1.5 * 2^23 + 127 (the exponent bias): adding it rounds to an integer
    // held in the low bits of j, already biased; subtracting ln2/2 first
    // turns the rounding to nearest into a floor
    const float magic = 12583039.0f;
    const float j = (x - 0.3465735902799726547f) * 1.44269504088896341f + magic;
    // the bits of j as an integer, saturated at the field of 2^128: x > 89,
    // +inf and +NaN (bit pattern above it) give field 255; an integer min,
    // not a float select, which GCC would turn into compares and blends
    int32_t ji = _dr_float_to_bits(j);
    ji = ji < 0x4b4000ff ? ji : 0x4b4000ff;
    const float k = _dr_bits_to_float(ji) - magic;
    float r = k * -0.693145751953125f + x;  // ln2 split in a short high part ...
    r = k * -1.4286068203094173e-06f + r;   // ... and the rest
    float p = 0.0019715704621838096f;
    p = p * r + 0.007744451817443449f;
    p = p * r + 0.04195283286547857f;
    p = p * r + 0.16659616597557358f;
    p = p * r + 0.5000082161066548f;
    p = p * r + 0.999999642498613f;
    p = p * r + 1.0000000025307452f;
    // 2^k: the field k + 127 shifted into place (the high bits of j fall off)
    const float s = _dr_bits_to_float((int32_t)((uint32_t)ji << 23));
    const float out = p * s;
    // below -88 the field would wrap (and r grow without bound): 0 there,
    // -inf included; NaN compares false and keeps its NaN
    return x < -88.0f ? 0.0f : out;
}

static inline __attribute__((always_inline)) double _dr_exp(double x) {
    const double magic = 6755399441056767.0;  // 1.5 * 2^52 + 1023
    const double j = (x - 0.34657359027997264) * 1.4426950408889634074 + magic;
    int64_t ji = _dr_double_to_bits(j);
    ji = ji < 0x43380000000007ffLL ? ji : 0x43380000000007ffLL;
    const double k = _dr_bits_to_double(ji) - magic;
    double r = k * -0.6931471803691238165 + x;  // ln2 high part: k * it is exact
    r = k * -1.9082149292705877000e-10 + r;
    double p = 3.551095573405242e-08;
    p = p * r + 2.554057837637411e-07;
    p = p * r + 2.7774198867848245e-06;
    p = p * r + 2.478696907686569e-05;
    p = p * r + 0.00019841916794385652;
    p = p * r + 0.001388886985494254;
    p = p * r + 0.008333333701134052;
    p = p * r + 0.04166666662168456;
    p = p * r + 0.16666666666990854;
    p = p * r + 0.49999999999987943;
    p = p * r + 1.0000000000000018;
    p = p * r + 1.0;
    const double s = _dr_bits_to_double((int64_t)((uint64_t)ji << 52));
    const double out = p * s;
    return x < -709.0 ? 0.0 : out;
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

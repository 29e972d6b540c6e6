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
// * sin and cos are written here too: in float, an exact reduction modulo
//   2 pi for every float through a table (kernels/cpu/trig_table.py), then
//   Taylor polynomials in double, within 0.51 ulp; in double, a two-double
//   Cody-Waite reduction below 2^30 and the C library's above (see below).
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

// ---------------------------------------------------------------- sin, cos (float)
// A float x is m 2^(e - 150) (m a 24-bit integer, e its exponent field), so
// x mod 2 pi = m T[e] mod 2 pi with T[e] = 2^(e - 150) mod 2 pi, a table of
// double pairs (kernels/cpu/trig_table.py). In double: p + perr = m hi exactly
// (an FMA), p < 2^24 2 pi; k = nearest integer to p 2/pi; r = p - k pi/2, pi/2
// in three doubles (the first FMA is exact: p - k _dr_pio2_1 has at most 52
// bits), plus perr + m lo; |r| <= pi/4 within about 2^-78 absolute, for every
// float, the largest included. Then sin r and cos r by their Taylor series to
// r^11 and r^12 (truncation below 1e-11 relative on |r| <= pi/4), the
// quadrant k mod 4 choosing one and its sign, and one rounding to float: the
// result is within 0.51 ulp (tests/cpu/test_cpu_math.py). Two gathers (the
// table) and about 40 double operations, no branch: GCC vectorises it, where
// the C library's sinf is a call per value (10x slower in a kernel). Without
// an FMA instruction (old x86 targets) the C library's is used instead.
// inf and NaN give NaN.
#if defined(__FMA__) || defined(__aarch64__) || defined(__ARM_FEATURE_FMA)
#define _DR_TRIG_TABLE 1
// BEGIN trig table (written by kernels/cpu/trig_table.py)
// T[e] = 2^(max(e, 1) - 150) mod 2 pi = _dr_trig_hi[e] + _dr_trig_lo[e]
alignas(64) static const double _dr_trig_hi[256] = {
    0x1.0000000000000p-149, 0x1.0000000000000p-149, 0x1.0000000000000p-148, 0x1.0000000000000p-147,
    0x1.0000000000000p-146, 0x1.0000000000000p-145, 0x1.0000000000000p-144, 0x1.0000000000000p-143,
    0x1.0000000000000p-142, 0x1.0000000000000p-141, 0x1.0000000000000p-140, 0x1.0000000000000p-139,
    0x1.0000000000000p-138, 0x1.0000000000000p-137, 0x1.0000000000000p-136, 0x1.0000000000000p-135,
    0x1.0000000000000p-134, 0x1.0000000000000p-133, 0x1.0000000000000p-132, 0x1.0000000000000p-131,
    0x1.0000000000000p-130, 0x1.0000000000000p-129, 0x1.0000000000000p-128, 0x1.0000000000000p-127,
    0x1.0000000000000p-126, 0x1.0000000000000p-125, 0x1.0000000000000p-124, 0x1.0000000000000p-123,
    0x1.0000000000000p-122, 0x1.0000000000000p-121, 0x1.0000000000000p-120, 0x1.0000000000000p-119,
    0x1.0000000000000p-118, 0x1.0000000000000p-117, 0x1.0000000000000p-116, 0x1.0000000000000p-115,
    0x1.0000000000000p-114, 0x1.0000000000000p-113, 0x1.0000000000000p-112, 0x1.0000000000000p-111,
    0x1.0000000000000p-110, 0x1.0000000000000p-109, 0x1.0000000000000p-108, 0x1.0000000000000p-107,
    0x1.0000000000000p-106, 0x1.0000000000000p-105, 0x1.0000000000000p-104, 0x1.0000000000000p-103,
    0x1.0000000000000p-102, 0x1.0000000000000p-101, 0x1.0000000000000p-100, 0x1.0000000000000p-99,
    0x1.0000000000000p-98, 0x1.0000000000000p-97, 0x1.0000000000000p-96, 0x1.0000000000000p-95,
    0x1.0000000000000p-94, 0x1.0000000000000p-93, 0x1.0000000000000p-92, 0x1.0000000000000p-91,
    0x1.0000000000000p-90, 0x1.0000000000000p-89, 0x1.0000000000000p-88, 0x1.0000000000000p-87,
    0x1.0000000000000p-86, 0x1.0000000000000p-85, 0x1.0000000000000p-84, 0x1.0000000000000p-83,
    0x1.0000000000000p-82, 0x1.0000000000000p-81, 0x1.0000000000000p-80, 0x1.0000000000000p-79,
    0x1.0000000000000p-78, 0x1.0000000000000p-77, 0x1.0000000000000p-76, 0x1.0000000000000p-75,
    0x1.0000000000000p-74, 0x1.0000000000000p-73, 0x1.0000000000000p-72, 0x1.0000000000000p-71,
    0x1.0000000000000p-70, 0x1.0000000000000p-69, 0x1.0000000000000p-68, 0x1.0000000000000p-67,
    0x1.0000000000000p-66, 0x1.0000000000000p-65, 0x1.0000000000000p-64, 0x1.0000000000000p-63,
    0x1.0000000000000p-62, 0x1.0000000000000p-61, 0x1.0000000000000p-60, 0x1.0000000000000p-59,
    0x1.0000000000000p-58, 0x1.0000000000000p-57, 0x1.0000000000000p-56, 0x1.0000000000000p-55,
    0x1.0000000000000p-54, 0x1.0000000000000p-53, 0x1.0000000000000p-52, 0x1.0000000000000p-51,
    0x1.0000000000000p-50, 0x1.0000000000000p-49, 0x1.0000000000000p-48, 0x1.0000000000000p-47,
    0x1.0000000000000p-46, 0x1.0000000000000p-45, 0x1.0000000000000p-44, 0x1.0000000000000p-43,
    0x1.0000000000000p-42, 0x1.0000000000000p-41, 0x1.0000000000000p-40, 0x1.0000000000000p-39,
    0x1.0000000000000p-38, 0x1.0000000000000p-37, 0x1.0000000000000p-36, 0x1.0000000000000p-35,
    0x1.0000000000000p-34, 0x1.0000000000000p-33, 0x1.0000000000000p-32, 0x1.0000000000000p-31,
    0x1.0000000000000p-30, 0x1.0000000000000p-29, 0x1.0000000000000p-28, 0x1.0000000000000p-27,
    0x1.0000000000000p-26, 0x1.0000000000000p-25, 0x1.0000000000000p-24, 0x1.0000000000000p-23,
    0x1.0000000000000p-22, 0x1.0000000000000p-21, 0x1.0000000000000p-20, 0x1.0000000000000p-19,
    0x1.0000000000000p-18, 0x1.0000000000000p-17, 0x1.0000000000000p-16, 0x1.0000000000000p-15,
    0x1.0000000000000p-14, 0x1.0000000000000p-13, 0x1.0000000000000p-12, 0x1.0000000000000p-11,
    0x1.0000000000000p-10, 0x1.0000000000000p-9, 0x1.0000000000000p-8, 0x1.0000000000000p-7,
    0x1.0000000000000p-6, 0x1.0000000000000p-5, 0x1.0000000000000p-4, 0x1.0000000000000p-3,
    0x1.0000000000000p-2, 0x1.0000000000000p-1, 0x1.0000000000000p+0, 0x1.0000000000000p+1,
    0x1.0000000000000p+2, 0x1.b7812aeef4b9fp+0, 0x1.b7812aeef4b9fp+1, 0x1.2b0bad558f435p-1,
    0x1.2b0bad558f435p+0, 0x1.2b0bad558f435p+1, 0x1.2b0bad558f435p+2, 0x1.87ef4acdb76a3p+1,
    0x1.87ef4acdb76a3p+2, 0x1.7dbee0572c02ep+2, 0x1.695e0b6a15344p+2, 0x1.409c618fe7971p+2,
    0x1.de321bb718b92p+1, 0x1.304999cb579e8p+0, 0x1.304999cb579e8p+1, 0x1.304999cb579e8p+2,
    0x1.9ce6fca4d8d6ep+1, 0x1.58e8ec12c0aa8p-3, 0x1.58e8ec12c0aa8p-2, 0x1.58e8ec12c0aa8p-1,
    0x1.58e8ec12c0aa8p+0, 0x1.58e8ec12c0aa8p+1, 0x1.58e8ec12c0aa8p+2, 0x1.1fb222e13e839p+2,
    0x1.5a8920fc746b2p+1, 0x1.5a8920fc746b2p+2, 0x1.22f28cb4a604bp+2, 0x1.678ac84a126fap+1,
    0x1.678ac84a126fap+2, 0x1.3cf5db4fe20ddp+2, 0x1.cf9802b702942p+1, 0x1.ebc26b95fe14fp-1,
    0x1.ebc26b95fe14fp+0, 0x1.ebc26b95fe14fp+1, 0x1.668ad946ed0dap+0, 0x1.668ad946ed0dap+1,
    0x1.668ad946ed0dap+2, 0x1.3af5fd499749bp+2, 0x1.c7988a9dd783bp+1, 0x1.abc6aacca5912p-1,
    0x1.abc6aacca5912p+0, 0x1.abc6aacca5912p+1, 0x1.9a6f58862bf99p-2, 0x1.9a6f58862bf99p-1,
    0x1.9a6f58862bf99p+0, 0x1.9a6f58862bf99p+1, 0x1.09f4683d25023p-3, 0x1.09f4683d25023p-2,
    0x1.09f4683d25023p-1, 0x1.09f4683d25023p+0, 0x1.09f4683d25023p+1, 0x1.09f4683d25023p+2,
    0x1.0392366c0e65cp+1, 0x1.0392366c0e65cp+2, 0x1.d412de4f67e7ep+0, 0x1.d412de4f67e7ep+1,
    0x1.07cca42c94599p+0, 0x1.07cca42c94599p+1, 0x1.07cca42c94599p+2, 0x1.f5e64c5397865p+0,
    0x1.f5e64c5397865p+1, 0x1.8f1a5c3d52d34p+0, 0x1.8f1a5c3d52d34p+1, 0x1.8f1a5c3d52d34p+2,
    0x1.8c15033662d50p+2, 0x1.860a512882d88p+2, 0x1.79f4ed0cc2df7p+2, 0x1.61ca24d542ed6p+2,
    0x1.3174946643093p+2, 0x1.a192e7108681bp+1, 0x1.ee6639887604dp-3, 0x1.ee6639887604dp-2,
    0x1.ee6639887604dp-1, 0x1.ee6639887604dp+0, 0x1.ee6639887604dp+1, 0x1.711a1110cccd4p+0,
    0x1.711a1110cccd4p+1, 0x1.711a1110cccd4p+2, 0x1.50146cdd56c8fp+2, 0x1.0e0924766ac06p+2,
    0x1.13e52751255e7p+1, 0x1.13e52751255e7p+2, 0x1.2b5532bc0fd6bp+1, 0x1.2b5532bc0fd6bp+2,
    0x1.89156067b9b7bp+1, 0x1.89156067b9b7bp+2, 0x1.800b0b8b309ddp+2, 0x1.6df661d21e6a2p+2,
    0x1.49cd0e5ffa02cp+2, 0x1.017a677bb133fp+2, 0x1.c35466cc7e59ap+0, 0x1.c35466cc7e59ap+1,
    0x1.89a58c41dc40cp-1, 0x1.89a58c41dc40cp+0, 0x1.89a58c41dc40cp+1, 0x1.89a58c41dc40cp+2,
    0x1.812b633f75affp+2, 0x1.7037113aa88e6p+2, 0x1.4e4e6d310e4b4p+2, 0x1.0a7d251dd9c4fp+2,
    0x1.05b529eee170cp+1, 0x1.05b529eee170cp+2, 0x1.e52a7a6600402p+0, 0x0.0p+0,
};
alignas(64) static const double _dr_trig_lo[256] = {
    0x0.0p+0, 0x0.0p+0, 0x0.0p+0, 0x0.0p+0,
    0x0.0p+0, 0x0.0p+0, 0x0.0p+0, 0x0.0p+0,
    0x0.0p+0, 0x0.0p+0, 0x0.0p+0, 0x0.0p+0,
    0x0.0p+0, 0x0.0p+0, 0x0.0p+0, 0x0.0p+0,
    0x0.0p+0, 0x0.0p+0, 0x0.0p+0, 0x0.0p+0,
    0x0.0p+0, 0x0.0p+0, 0x0.0p+0, 0x0.0p+0,
    0x0.0p+0, 0x0.0p+0, 0x0.0p+0, 0x0.0p+0,
    0x0.0p+0, 0x0.0p+0, 0x0.0p+0, 0x0.0p+0,
    0x0.0p+0, 0x0.0p+0, 0x0.0p+0, 0x0.0p+0,
    0x0.0p+0, 0x0.0p+0, 0x0.0p+0, 0x0.0p+0,
    0x0.0p+0, 0x0.0p+0, 0x0.0p+0, 0x0.0p+0,
    0x0.0p+0, 0x0.0p+0, 0x0.0p+0, 0x0.0p+0,
    0x0.0p+0, 0x0.0p+0, 0x0.0p+0, 0x0.0p+0,
    0x0.0p+0, 0x0.0p+0, 0x0.0p+0, 0x0.0p+0,
    0x0.0p+0, 0x0.0p+0, 0x0.0p+0, 0x0.0p+0,
    0x0.0p+0, 0x0.0p+0, 0x0.0p+0, 0x0.0p+0,
    0x0.0p+0, 0x0.0p+0, 0x0.0p+0, 0x0.0p+0,
    0x0.0p+0, 0x0.0p+0, 0x0.0p+0, 0x0.0p+0,
    0x0.0p+0, 0x0.0p+0, 0x0.0p+0, 0x0.0p+0,
    0x0.0p+0, 0x0.0p+0, 0x0.0p+0, 0x0.0p+0,
    0x0.0p+0, 0x0.0p+0, 0x0.0p+0, 0x0.0p+0,
    0x0.0p+0, 0x0.0p+0, 0x0.0p+0, 0x0.0p+0,
    0x0.0p+0, 0x0.0p+0, 0x0.0p+0, 0x0.0p+0,
    0x0.0p+0, 0x0.0p+0, 0x0.0p+0, 0x0.0p+0,
    0x0.0p+0, 0x0.0p+0, 0x0.0p+0, 0x0.0p+0,
    0x0.0p+0, 0x0.0p+0, 0x0.0p+0, 0x0.0p+0,
    0x0.0p+0, 0x0.0p+0, 0x0.0p+0, 0x0.0p+0,
    0x0.0p+0, 0x0.0p+0, 0x0.0p+0, 0x0.0p+0,
    0x0.0p+0, 0x0.0p+0, 0x0.0p+0, 0x0.0p+0,
    0x0.0p+0, 0x0.0p+0, 0x0.0p+0, 0x0.0p+0,
    0x0.0p+0, 0x0.0p+0, 0x0.0p+0, 0x0.0p+0,
    0x0.0p+0, 0x0.0p+0, 0x0.0p+0, 0x0.0p+0,
    0x0.0p+0, 0x0.0p+0, 0x0.0p+0, 0x0.0p+0,
    0x0.0p+0, 0x0.0p+0, 0x0.0p+0, 0x0.0p+0,
    0x0.0p+0, 0x0.0p+0, 0x0.0p+0, 0x0.0p+0,
    0x0.0p+0, 0x0.0p+0, 0x0.0p+0, 0x0.0p+0,
    0x0.0p+0, 0x0.0p+0, 0x0.0p+0, 0x0.0p+0,
    0x0.0p+0, 0x0.0p+0, 0x0.0p+0, 0x0.0p+0,
    0x0.0p+0, -0x1.a62633145c06ep-56, -0x1.a62633145c06ep-55, -0x1.f5f7fb2e61132p-59,
    -0x1.f5f7fb2e61132p-58, -0x1.f5f7fb2e61132p-57, -0x1.f5f7fb2e61132p-56, 0x1.4dbd3ad1dc3a6p-53,
    0x1.4dbd3ad1dc3a6p-52, 0x1.8118127272b44p-52, 0x1.e7cdc1b39fa82p-52, -0x1.4ac6dfca06703p-52,
    0x1.403f74eab57cfp-54, -0x1.e90aa2efac07ep-54, -0x1.e90aa2efac07ep-53, -0x1.e90aa2efac07ep-52,
    -0x1.d8ef52213ba05p-53, 0x1.95c955afd3e7bp-57, 0x1.95c955afd3e7bp-56, 0x1.95c955afd3e7bp-55,
    0x1.95c955afd3e7bp-54, 0x1.95c955afd3e7bp-53, 0x1.95c955afd3e7bp-52, -0x1.eecfb7d19df11p-52,
    -0x1.f003a5a903450p-53, -0x1.f003a5a903450p-52, -0x1.f4d35d069894fp-53, 0x1.e1947f9043554p-53,
    0x1.e1947f9043554p-52, -0x1.57396410bf160p-52, 0x1.b956a569e09d0p-55, -0x1.6065ceb66cc97p-55,
    -0x1.6065ceb66cc97p-54, -0x1.6065ceb66cc97p-53, -0x1.eb20c79eca277p-54, -0x1.eb20c79eca277p-53,
    -0x1.eb20c79eca277p-52, -0x1.e147e4ddb41ebp-53, -0x1.f754901df3be4p-53, -0x1.1b6f34f397eb5p-56,
    -0x1.1b6f34f397eb5p-55, -0x1.1b6f34f397eb5p-54, 0x1.7e60254ee49ebp-56, 0x1.7e60254ee49ebp-55,
    0x1.7e60254ee49ebp-54, 0x1.7e60254ee49ebp-53, 0x1.fee10ecf6f246p-59, 0x1.fee10ecf6f246p-58,
    0x1.fee10ecf6f246p-57, 0x1.fee10ecf6f246p-56, 0x1.fee10ecf6f246p-55, 0x1.fee10ecf6f246p-54,
    -0x1.af1dbc98e2e42p-56, -0x1.af1dbc98e2e42p-55, 0x1.e758b6a2061a3p-54, 0x1.e758b6a2061a3p-53,
    -0x1.984d6479fd323p-55, -0x1.984d6479fd323p-54, -0x1.984d6479fd323p-53, 0x1.3540e152f4359p-54,
    0x1.3540e152f4359p-53, 0x1.ade7e21ae7526p-56, 0x1.ade7e21ae7526p-55, 0x1.ade7e21ae7526p-54,
    -0x1.0db9c88f485cfp-54, -0x1.a13f4778e9eefp-52, -0x1.7383c88c66790p-54, -0x1.d424477778fcfp-52,
    -0x1.8555e4406f74ap-53, -0x1.3f708ee36a6a2p-53, 0x1.8b437ad3f55e0p-58, 0x1.8b437ad3f55e0p-57,
    0x1.8b437ad3f55e0p-56, 0x1.8b437ad3f55e0p-55, 0x1.8b437ad3f55e0p-54, -0x1.5302971d2c45bp-54,
    -0x1.5302971d2c45bp-53, -0x1.5302971d2c45bp-52, 0x1.fcc374a30da1ap-55, -0x1.36630c1104b01p-53,
    -0x1.4315bd0929c20p-54, -0x1.4315bd0929c20p-53, -0x1.75e080e9be09ap-54, -0x1.75e080e9be09ap-53,
    -0x1.2085c83607941p-53, -0x1.2085c83607941p-52, 0x1.492418c5562eep-53, 0x1.760daca08373ap-55,
    -0x1.79bdf01249c71p-53, 0x1.6bdfacbc70789p-52, -0x1.0a8c26e1933d7p-54, -0x1.0a8c26e1933d7p-53,
    -0x1.27745096c7eeep-55, -0x1.27745096c7eeep-54, -0x1.27745096c7eeep-53, -0x1.27745096c7eeep-52,
    0x1.2d69f74254c3bp-53, 0x1.30794110f0348p-56, -0x1.e8a6761e4f73cp-53, 0x1.f9ee4d60d597bp-53,
    0x1.bf17d45f1fae7p-53, 0x1.bf17d45f1fae7p-52, 0x1.8f351633e671fp-54, 0x0.0p+0,
};
// pi / 2 = _dr_pio2_1 + _dr_pio2_2 + _dr_pio2_3 (+ about 2^-160)
static const double _dr_pio2_1 = 0x1.921fb54442d18p+0, _dr_pio2_2 = 0x1.1a62633145c07p-54,
                    _dr_pio2_3 = -0x1.f1976b7ed8fbcp-110;
// END trig table

// 1.5 * 2^52: adding it to y (|y| < 2^51) rounds y to an integer, held in the
// low bits of the sum
static const double _dr_round_magic = 6755399441056768.0;

// sin (quarter 0) or cos (quarter 1) of x from sin r and cos r, r = x - k pi/2,
// kj = k + _dr_round_magic: quadrant k mod 4 picks one and its sign
static inline __attribute__((always_inline)) double _dr_quadrant(double kj, int32_t quarter,
                                                                 double sn, double cs) {
    const int32_t q = (int32_t)(_dr_double_to_bits(kj) & 3) + quarter;
    const double out = (q & 1) ? cs : sn;
    return (q & 2) ? -out : out;
}

static inline __attribute__((always_inline)) float _dr_trig(float x, int32_t quarter) {
    // quarter 0: sin x; 1: cos x = sin(|x| + pi/2), one quadrant on, even in x
    const int32_t bits = _dr_float_to_bits(x);
    const int32_t e = (bits >> 23) & 0xff;
    const double m = (double)((bits & 0x7fffff) | (e ? 0x800000 : 0));
    const double hi = _dr_trig_hi[e], lo = _dr_trig_lo[e];
    const double p = m * hi;
    const double perr = std::fma(m, hi, -p);
    const double kj = p * 0.63661977236758134 + _dr_round_magic;
    const double k = kj - _dr_round_magic;
    double r = std::fma(-k, _dr_pio2_1, p);
    r = std::fma(-k, _dr_pio2_2, r);
    r += std::fma(m, lo, perr);
    r = std::fma(-k, _dr_pio2_3, r);
    const double z = r * r;
    double sp = -2.505210838544172e-08;  // -1/11!
    sp = sp * z + 2.7557319223985893e-06;
    sp = sp * z - 1.984126984126984e-04;
    sp = sp * z + 8.333333333333333e-03;
    sp = sp * z - 1.6666666666666666e-01;
    const double sn = r + r * z * sp;
    double cp = 2.08767569878681e-09;  // 1/12!
    cp = cp * z - 2.755731922398589e-07;
    cp = cp * z + 2.48015873015873e-05;
    cp = cp * z - 1.388888888888889e-03;
    cp = cp * z + 4.1666666666666664e-02;
    cp = cp * z - 0.5;
    float f = (float)_dr_quadrant(kj, quarter, sn, 1.0 + z * cp);
    // the sign of x for the sine (odd), none for the cosine; NaN for inf, NaN
    f = _dr_bits_to_float(_dr_float_to_bits(f) ^ ((bits & (int32_t)0x80000000) & (quarter - 1)));
    return e == 0xff ? x - x : f;
}
static inline __attribute__((always_inline)) float _dr_sin(float x) { return _dr_trig(x, 0); }
static inline __attribute__((always_inline)) float _dr_cos(float x) { return _dr_trig(x, 1); }
#else
static inline float _dr_sin(float x) { return std::sin(x); }
static inline float _dr_cos(float x) { return std::cos(x); }
#endif

// ---------------------------------------------------------------- sin, cos (double)
// For |x| < 2^30: k = nearest integer to |x| 2/pi, r = |x| - k pi/2 with
// pi/2 in three doubles (kernels/cpu/trig_table.py): the first FMA is exact
// (|x| and k _dr_pio2_1 are multiples of 2^-52 and their difference is below
// 1), k _dr_pio2_2 is an exact product (an FMA) subtracted with a TwoSum, so
// r = rh + rl to about 2^-105 relative: the doubles closest to multiples of
// pi/2 keep their digits (results down to 1e-18 measured). Then Taylor
// polynomials in rh to r^17 and r^16 (truncation below 1e-19), plus rl times
// the derivative: 0.99 ulp measured (the tests check 1.5). Wider x, inf and
// NaN go to the C library through _dr_trig_wide, a function with SIMD clones
// ("declare simd"): the loop stays vectorised and calls the clone once per
// vector, which keeps the fast lanes and calls the C library for the others.
// GCC builds those clones; other compilers (and targets without FMA) use the
// C library throughout.
#if defined(_DR_TRIG_TABLE) && defined(__GNUC__) && !defined(__clang__)
#pragma omp declare simd notinbranch uniform(quarter)
static __attribute__((noinline)) double _dr_trig_wide(double x, double fast, int32_t quarter) {
    return std::fabs(x) < 1073741824.0 ? fast : (quarter ? std::cos(x) : std::sin(x));
}
static inline __attribute__((always_inline)) double _dr_trig(double x, int32_t quarter) {
    const double ax = std::fabs(x);
    const double kj = ax * 0.63661977236758134 + _dr_round_magic;
    const double k = kj - _dr_round_magic;
    const double r1 = std::fma(-k, _dr_pio2_1, ax);
    const double th = k * _dr_pio2_2, tl = std::fma(k, _dr_pio2_2, -th);
    const double rh = r1 - th;  // r1 - th = rh + err exactly (TwoSum)
    const double bb = rh - r1;
    const double err = (r1 - (rh - bb)) + (-th - bb);
    const double rl = (err - tl) - k * _dr_pio2_3;
    const double z = rh * rh;
    double sp = 2.8114572543455206e-15;  // 1/17!
    sp = sp * z - 7.647163731819816e-13;
    sp = sp * z + 1.6059043836821613e-10;
    sp = sp * z - 2.505210838544172e-08;
    sp = sp * z + 2.7557319223985893e-06;
    sp = sp * z - 1.984126984126984e-04;
    sp = sp * z + 8.333333333333333e-03;
    sp = sp * z - 1.6666666666666666e-01;
    const double sn = rh + (rh * z * sp + rl * (1.0 - 0.5 * z));
    double cp = 4.779477332387385e-14;  // 1/16!
    cp = cp * z - 1.1470745597729725e-11;
    cp = cp * z + 2.08767569878681e-09;
    cp = cp * z - 2.755731922398589e-07;
    cp = cp * z + 2.48015873015873e-05;
    cp = cp * z - 1.388888888888889e-03;
    cp = cp * z + 4.1666666666666664e-02;
    const double cs = 1.0 + (-0.5 * z + (z * z * cp - rl * rh));
    double out = _dr_quadrant(kj, quarter, sn, cs);
    // the sign of x for the sine, none for the cosine
    out = _dr_bits_to_double(_dr_double_to_bits(out) ^ (_dr_double_to_bits(x)
          & (int64_t)0x8000000000000000LL & (int64_t)(quarter - 1)));
    return _dr_trig_wide(x, out, quarter);
}
static inline __attribute__((always_inline)) double _dr_sin(double x) { return _dr_trig(x, 0); }
static inline __attribute__((always_inline)) double _dr_cos(double x) { return _dr_trig(x, 1); }
#else
static inline double _dr_sin(double x) { return std::sin(x); }
static inline double _dr_cos(double x) { return std::cos(x); }
#endif

// ---------------------------------------------------------------- the rest
#define _DR_BOTH(name, call)                                                        \
    static inline __attribute__((always_inline)) float name(float x) { return call; } \
    static inline __attribute__((always_inline)) double name(double x) { return call; }
_DR_BOTH(_dr_sqrt, std::sqrt(x))
_DR_BOTH(_dr_rsqrt, 1 / std::sqrt(x))
_DR_BOTH(_dr_abs, std::fabs(x))
_DR_BOTH(_dr_floor, std::floor(x))
_DR_BOTH(_dr_round, std::round(x))
_DR_BOTH(_dr_asin, std::asin(x))
_DR_BOTH(_dr_acos, std::acos(x))
_DR_BOTH(_dr_atan, std::atan(x))
#undef _DR_BOTH
static inline float _dr_pow(float x, float y) { return std::pow(x, y); }
static inline double _dr_pow(double x, double y) { return std::pow(x, y); }
static inline float _dr_atan2(float y, float x) { return std::atan2(y, x); }
static inline double _dr_atan2(double y, double x) { return std::atan2(y, x); }

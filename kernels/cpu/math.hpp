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
//   2 pi for every float through a table (kernels/cpu/tables.py), then
//   Taylor polynomials in double, within 0.51 ulp; in double, a two-double
//   Cody-Waite reduction below 2^30 and the C library's above (see below).
// * sqrt, floor, round and fabs map to instructions (-fno-math-errno).
// * pow, atan, asin, acos and atan2 are written here too (see below);
// * there is no other function: sqrt, floor, round and fabs are instructions.

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <new>

// sin, cos and pow below are built on exact products (FMA): without an FMA
// instruction (old x86 targets) they are the C library's
#if defined(__FMA__) || defined(__aarch64__) || defined(__ARM_FEATURE_FMA)
#define _DR_FMA 1
#endif

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

// a + b = hi + lo exactly (Knuth's TwoSum: either may be the larger); the
// compensated sums of the reduction states use it too (states/lanes.hpp)
template <class U> static inline __attribute__((always_inline)) void _dr_two_sum(U a, U b, U &hi,
                                                                               U &lo) {
    const U s = a + b;
    const U bp = s - a;
    lo = (a - (s - bp)) + (b - bp);
    hi = s;
}

// r with the sign bit of x flipped in (the sign of x when r >= 0)
static inline __attribute__((always_inline)) double _dr_with_sign(double r, double x) {
    return _dr_bits_to_double(_dr_double_to_bits(r) ^
                              (_dr_double_to_bits(x) & (int64_t)0x8000000000000000LL));
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
    // the special cases are read off the bits: float compares of x would let GCC
    // fold a select that computed x (exp's flush, say) into them, a mask
    // conversion its vectoriser rejects (log(exp(x)) ran 20x slower)
    const int32_t bx = _dr_float_to_bits(x);
    const bool tiny = bx < 0x00800000;  // subnormal (or <= 0): scale up first
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
    const uint32_t ub = (uint32_t)bx;
    out = (ub == 0x7f800000u) ? inf : out;
    out = ((ub & 0x7fffffffu) == 0) ? -inf : out;
    // NaN, or below -0
    out = ((ub > 0x7f800000u) & (ub != 0x80000000u)) ? std::numeric_limits<float>::quiet_NaN() : out;
    return out;
}

static inline __attribute__((always_inline)) double _dr_log(double x) {
    const int64_t bx = _dr_double_to_bits(x);  // the special cases from the bits, as in float
    const bool tiny = bx < 0x0010000000000000LL;
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
    const uint64_t ub = (uint64_t)bx;
    out = (ub == 0x7ff0000000000000ULL) ? inf : out;
    out = ((ub & 0x7fffffffffffffffULL) == 0) ? -inf : out;
    out = ((ub > 0x7ff0000000000000ULL) & (ub != 0x8000000000000000ULL))
              ? std::numeric_limits<double>::quiet_NaN() : out;
    return out;
}

// ---------------------------------------------------------------- sin, cos (float)
// A float x is m 2^(e - 150) (m a 24-bit integer, e its exponent field), so
// x mod 2 pi = m T[e] mod 2 pi with T[e] = 2^(e - 150) mod 2 pi, a table of
// double pairs (kernels/cpu/tables.py). In double: p + perr = m hi exactly
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
#if defined(_DR_FMA)
// BEGIN trig table (written by kernels/cpu/tables.py)
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
static const double _dr_round_magic = 6755399441055744.0;

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
// pi/2 in three doubles (kernels/cpu/tables.py): the first FMA is exact
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
#if defined(_DR_FMA) && defined(__GNUC__) && !defined(__clang__)
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
    double rh, err;
    _dr_two_sum(r1, -th, rh, err);  // r1 - th = rh + err exactly
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

// ---------------------------------------------------------------- pow
// x^y = e^(y log|x|), the sign and the special values as C's pow (every pair
// of +-0, +-1, +-inf, NaN, integers odd and even, and x < 0 with y not an
// integer: NaN). log|x| comes from a table (kernels/cpu/tables.py): x = 2^e m,
// the 7 mantissa bits below the exponent pick c, 1/c and log c (two doubles),
// r = m / c - 1 with |r| < 2^-8, and log|x| = e ln2 + log c + log(1 + r) by
// its series; no division, two or three gathers, no branch, so the loop
// stays vectorised (the C library's pow is a call per value: 2-3x slower in a
// bare loop, and the loop around it is not vectorised). Measured against
// long double: float <= 0.51 ulp, double <= 2.1 ulp (tests/cpu/test_cpu_math.py
// checks 1 and 2.5).
#if defined(_DR_FMA)
// BEGIN log table (written by kernels/cpu/tables.py)
// interval i of m: 1 / c = _dr_log_invc[i], log c = _dr_log_c_hi[i] + _dr_log_c_lo[i]; c = 1 for i = 75
alignas(64) static const double _dr_log_invc[128] = {
    0x1.6a13cd1537290p+0, 0x1.6816816816817p+0, 0x1.661ec6a5122f9p+0, 0x1.642c8590b2164p+0,
    0x1.623fa77016240p+0, 0x1.6058160581606p+0, 0x1.5e75bb8d015e7p+0, 0x1.5c9882b931057p+0,
    0x1.5ac056b015ac0p+0, 0x1.58ed2308158edp+0, 0x1.571ed3c506b3ap+0, 0x1.5555555555555p+0,
    0x1.5390948f40febp+0, 0x1.51d07eae2f815p+0, 0x1.5015015015015p+0, 0x1.4e5e0a72f0539p+0,
    0x1.4cab88725af6ep+0, 0x1.4afd6a052bf5bp+0, 0x1.49539e3b2d067p+0, 0x1.47ae147ae147bp+0,
    0x1.460cbc7f5cf9ap+0, 0x1.446f86562d9fbp+0, 0x1.42d6625d51f87p+0, 0x1.4141414141414p+0,
    0x1.3fb013fb013fbp+0, 0x1.3e22cbce4a902p+0, 0x1.3c995a47babe7p+0, 0x1.3b13b13b13b14p+0,
    0x1.3991c2c187f63p+0, 0x1.3813813813814p+0, 0x1.3698df3de0748p+0, 0x1.3521cfb2b78c1p+0,
    0x1.33ae45b57bcb2p+0, 0x1.323e34a2b10bfp+0, 0x1.30d190130d190p+0, 0x1.2f684bda12f68p+0,
    0x1.2e025c04b8097p+0, 0x1.2c9fb4d812ca0p+0, 0x1.2b404ad012b40p+0, 0x1.29e4129e4129ep+0,
    0x1.288b01288b013p+0, 0x1.27350b8812735p+0, 0x1.25e22708092f1p+0, 0x1.2492492492492p+0,
    0x1.23456789abcdfp+0, 0x1.21fb78121fb78p+0, 0x1.20b470c67c0d9p+0, 0x1.1f7047dc11f70p+0,
    0x1.1e2ef3b3fb874p+0, 0x1.1cf06ada2811dp+0, 0x1.1bb4a4046ed29p+0, 0x1.1a7b9611a7b96p+0,
    0x1.19453808ca29cp+0, 0x1.1811811811812p+0, 0x1.16e0689427379p+0, 0x1.15b1e5f75270dp+0,
    0x1.1485f0e0acd3bp+0, 0x1.135c81135c811p+0, 0x1.12358e75d3033p+0, 0x1.1111111111111p+0,
    0x1.0fef010fef011p+0, 0x1.0ecf56be69c90p+0, 0x1.0db20a88f4696p+0, 0x1.0c9714fbcda3bp+0,
    0x1.0b7e6ec259dc8p+0, 0x1.0a6810a6810a7p+0, 0x1.0953f39010954p+0, 0x1.0842108421084p+0,
    0x1.073260a47f7c6p+0, 0x1.0624dd2f1a9fcp+0, 0x1.05197f7d73404p+0, 0x1.0410410410410p+0,
    0x1.03091b51f5e1ap+0, 0x1.0204081020408p+0, 0x1.0101010101010p+0, 0x1.0000000000000p+0,
    0x1.fc07f01fc07f0p-1, 0x1.f81f81f81f820p-1, 0x1.f44659e4a4271p-1, 0x1.f07c1f07c1f08p-1,
    0x1.ecc07b301ecc0p-1, 0x1.e9131abf0b767p-1, 0x1.e573ac901e574p-1, 0x1.e1e1e1e1e1e1ep-1,
    0x1.de5d6e3f8868ap-1, 0x1.dae6076b981dbp-1, 0x1.d77b654b82c34p-1, 0x1.d41d41d41d41dp-1,
    0x1.d0cb58f6ec074p-1, 0x1.cd85689039b0bp-1, 0x1.ca4b3055ee191p-1, 0x1.c71c71c71c71cp-1,
    0x1.c3f8f01c3f8f0p-1, 0x1.c0e070381c0e0p-1, 0x1.bdd2b899406f7p-1, 0x1.bacf914c1bad0p-1,
    0x1.b7d6c3dda338bp-1, 0x1.b4e81b4e81b4fp-1, 0x1.b2036406c80d9p-1, 0x1.af286bca1af28p-1,
    0x1.ac5701ac5701bp-1, 0x1.a98ef606a63bep-1, 0x1.a6d01a6d01a6dp-1, 0x1.a41a41a41a41ap-1,
    0x1.a16d3f97a4b02p-1, 0x1.9ec8e951033d9p-1, 0x1.9c2d14ee4a102p-1, 0x1.999999999999ap-1,
    0x1.970e4f80cb872p-1, 0x1.948b0fcd6e9e0p-1, 0x1.920fb49d0e229p-1, 0x1.8f9c18f9c18fap-1,
    0x1.8d3018d3018d3p-1, 0x1.8acb90f6bf3aap-1, 0x1.886e5f0abb04ap-1, 0x1.8618618618618p-1,
    0x1.83c977ab2beddp-1, 0x1.8181818181818p-1, 0x1.7f405fd017f40p-1, 0x1.7d05f417d05f4p-1,
    0x1.7ad2208e0ecc3p-1, 0x1.78a4c8178a4c8p-1, 0x1.767dce434a9b1p-1, 0x1.745d1745d1746p-1,
    0x1.724287f46debcp-1, 0x1.702e05c0b8170p-1, 0x1.6e1f76b4337c7p-1, 0x1.6c16c16c16c17p-1,
};
alignas(64) static const double _dr_log_c_hi[128] = {
    -0x1.630030b3aac48p-2, -0x1.5d5bddf595f31p-2, -0x1.57bf753c8d1fbp-2, -0x1.522ae0738a3d7p-2,
    -0x1.4c9e09e172c3dp-2, -0x1.4718dc271c41cp-2, -0x1.419b423d5e8c6p-2, -0x1.3c25277333183p-2,
    -0x1.36b6776be1116p-2, -0x1.314f1e1d35ce3p-2, -0x1.2bef07cdc9355p-2, -0x1.269621134db91p-2,
    -0x1.214456d0eb8d5p-2, -0x1.1bf99635a6b95p-2, -0x1.16b5ccbacfb73p-2, -0x1.1178e8227e47ap-2,
    -0x1.0c42d676162e2p-2, -0x1.07138604d5864p-2, -0x1.01eae5626c691p-2, -0x1.f991c6cb3b37ap-3,
    -0x1.ef5ade4dcffe5p-3, -0x1.e530effe71013p-3, -0x1.db13db0d48941p-3, -0x1.d1037f2655e7bp-3,
    -0x1.c6ffbc6f00f71p-3, -0x1.bd087383bd8aap-3, -0x1.b31d8575bce3bp-3, -0x1.a93ed3c8ad9e5p-3,
    -0x1.9f6c407089663p-3, -0x1.95a5adcf70182p-3, -0x1.8beafeb38fe8fp-3, -0x1.823c16551a3c0p-3,
    -0x1.7898d85444c74p-3, -0x1.6f0128b756ab9p-3, -0x1.6574ebe8c1339p-3, -0x1.5bf406b543db0p-3,
    -0x1.527e5e4a1b58dp-3, -0x1.4913d8333b563p-3, -0x1.3fb45a59928cap-3, -0x1.365fcb0159014p-3,
    -0x1.2d1610c86813dp-3, -0x1.23d712a49c201p-3, -0x1.1aa2b7e23f729p-3, -0x1.1178e8227e47ap-3,
    -0x1.08598b59e3a07p-3, -0x1.fe89139dbd565p-4, -0x1.ec739830a1126p-4, -0x1.da7276384469ep-4,
    -0x1.c885801bc4b20p-4, -0x1.b6ac88dad5b1dp-4, -0x1.a4e7640b1bc38p-4, -0x1.9335e5d594988p-4,
    -0x1.8197e2f40e3f0p-4, -0x1.700d30aeac0e8p-4, -0x1.5e95a4d9791cdp-4, -0x1.4d3115d207eacp-4,
    -0x1.3bdf5a7d1ee5ep-4, -0x1.2aa04a44717a1p-4, -0x1.1973bd1465561p-4, -0x1.08598b59e3a06p-4,
    -0x1.eea31c006b87cp-5, -0x1.ccb73cdddb2d0p-5, -0x1.aaef2d0fb1108p-5, -0x1.894aa149fb34bp-5,
    -0x1.67c94f2d4bb65p-5, -0x1.466aed42de3f9p-5, -0x1.252f32f8d1840p-5, -0x1.0415d89e74440p-5,
    -0x1.c63d2ec14aad7p-6, -0x1.8492528c8cac5p-6, -0x1.432a925980cbcp-6, -0x1.0205658935837p-6,
    -0x1.82448a388a283p-7, -0x1.010157588de69p-7, -0x1.0080559588b25p-8, 0x0.0p+0,
    0x1.fe02a6b106799p-8, 0x1.fc0a8b0fc03c4p-7, 0x1.7b91b07d5b126p-6, 0x1.f829b0e7832f8p-6,
    0x1.39e87b9febd68p-5, 0x1.77458f632dcffp-5, 0x1.b42dd711971b9p-5, 0x1.f0a30c01162a8p-5,
    0x1.16536eea37ae3p-4, 0x1.341d7961bd1d0p-4, 0x1.51b073f06183cp-4, 0x1.6f0d28ae56b4ep-4,
    0x1.8c345d6319b23p-4, 0x1.a926d3a4ad562p-4, 0x1.c5e548f5bc743p-4, 0x1.e27076e2af2eap-4,
    0x1.fec9131dbeabcp-4, 0x1.0d77e7cd08e5bp-3, 0x1.1b72ad52f67a2p-3, 0x1.29552f81ff521p-3,
    0x1.371fc201e8f75p-3, 0x1.44d2b6ccb7d1cp-3, 0x1.526e5e3a1b438p-3, 0x1.5ff3070a793d6p-3,
    0x1.6d60fe719d21bp-3, 0x1.7ab890210d907p-3, 0x1.87fa06520c911p-3, 0x1.9525a9cf456b6p-3,
    0x1.a23bc1fe2b561p-3, 0x1.af3c94e80bff3p-3, 0x1.bc286742d8cd4p-3, 0x1.c8ff7c79a9a20p-3,
    0x1.d5c216b4fbb94p-3, 0x1.e27076e2af2e8p-3, 0x1.ef0adcbdc5935p-3, 0x1.fb9186d5e3e29p-3,
    0x1.0402594b4d041p-2, 0x1.0a324e27390e2p-2, 0x1.1058bf9ae4ad4p-2, 0x1.1675cababa60fp-2,
    0x1.1c898c16999fbp-2, 0x1.22941fbcf7966p-2, 0x1.2895a13de86a4p-2, 0x1.2e8e2bae11d31p-2,
    0x1.347dd9a987d56p-2, 0x1.3a64c556945eap-2, 0x1.404308686a7e4p-2, 0x1.4618bc21c5ec2p-2,
    0x1.4be5f957778a1p-2, 0x1.51aad872df82ep-2, 0x1.5767717455a6cp-2, 0x1.5d1bdbf5809cap-2,
};
alignas(64) static const double _dr_log_c_lo[128] = {
    -0x1.ee0c6728fffccp-56, -0x1.d5f75b9a23ae4p-59, 0x1.2908d15f88b63p-57, -0x1.3840b263acb43p-56,
    0x1.123615b147a5fp-58, -0x1.d8fb4c14c56eep-56, -0x1.5b7648704e721p-58, -0x1.152d81af5713ap-56,
    0x1.324f0e8838590p-58, -0x1.22966f61a3c23p-56, 0x1.22dad7fd86088p-56, -0x1.e0efadd9db02ap-56,
    0x1.50a2dca28b3edp-58, 0x1.e9575c2124912p-56, -0x1.56fbd28b40935p-56, -0x1.b8ce2d07f1cb7p-56,
    0x1.5a74e18a8bb85p-56, 0x1.24e912b16ec8bp-60, -0x1.d9f5bd0b5b348p-57, -0x1.ecca0cdf30143p-58,
    -0x1.7754d2238f75fp-58, 0x1.f7627ef82f3f0p-57, 0x1.8af715b0349a4p-57, 0x1.3f3adb7b71cbcp-58,
    0x1.ae58b2c57a4a5p-57, 0x1.1165504ad749ep-59, 0x1.0d4eace1aa537p-59, -0x1.bcafa9de97202p-57,
    0x1.52979a7e86605p-57, -0x1.8a16283fdbd1cp-57, 0x1.54aae92cd0b87p-59, -0x1.6dcd318f4187ep-57,
    -0x1.be3dbaf3ec804p-60, 0x1.37967087859b9p-59, -0x1.c5961e173bc82p-57, 0x1.1f5b44c0df7f7p-61,
    0x1.b8d4b411cadffp-60, 0x1.0d5604930f137p-58, 0x1.d87e6a354d057p-57, -0x1.bea08d2dca256p-57,
    -0x1.d997036941a6dp-60, -0x1.51c7e9efae297p-57, -0x1.6e44389934420p-57, 0x1.0e63a5f01c693p-58,
    0x1.fd7009902bf32p-57, 0x1.ac9f4215f9394p-58, -0x1.eea033743f95bp-58, -0x1.401fa71733017p-58,
    0x1.5c734aa6598fcp-58, 0x1.002bf768e52d0p-58, 0x1.9b5ca203e4259p-58, 0x1.478a85704ccb7p-58,
    0x1.230690020895fp-59, -0x1.a36a677b4c8b2p-59, 0x1.4c78ba3a3baf6p-58, -0x1.da7d0b1e10b2fp-60,
    -0x1.f52eda76b68acp-60, -0x1.aea2c72d05c08p-58, 0x1.7aac1b3d35680p-58, 0x1.dd7009902bf32p-58,
    0x1.7c9f9276f6cd8p-60, 0x1.e48fb0500efd5p-59, -0x1.68d4eed0b82aep-59, 0x1.2ba0b44cfaee5p-59,
    -0x1.0413e6505e5f9p-59, 0x1.9badefe942718p-60, -0x1.ae021b67a9ba8p-61, -0x1.c05cf1d753621p-59,
    -0x1.8fe7acbca131dp-63, 0x1.d192d0619fa68p-60, 0x1.8cdaf39004193p-60, -0x1.27c8e8416e717p-60,
    -0x1.04b16137f0970p-62, -0x1.46662d417cecep-62, -0x1.f96638cf63675p-62, 0x0.0p+0,
    -0x1.e44b7e3711e7fp-67, -0x1.83092c5964281p-62, -0x1.6d80ab38e9430p-62, 0x1.33e3f04f1ef25p-60,
    -0x1.5bfa937f551b7p-59, 0x1.8d3ca87b92968p-63, 0x1.0a34531f67db5p-59, 0x1.85f325c5bbacdp-59,
    0x1.2189705cf74cap-58, -0x1.3599f227becbbp-58, -0x1.5b61c65e5741ap-58, -0x1.20db323097324p-59,
    -0x1.294d2f5668495p-58, -0x1.d7a16eab1e2adp-59, 0x1.2eb0bf7c0b0d9p-59, -0x1.61578001e015ap-60,
    -0x1.5746b9981b36cp-58, 0x1.9a5dc5e9030adp-57, -0x1.fbe7ee5c69946p-57, 0x1.301771c407dc0p-57,
    0x1.e6cb62af18a02p-62, 0x1.7d3d950f87e23p-59, -0x1.546ff8a470d3ap-57, -0x1.bc60efafc6f6cp-58,
    0x1.d551d97132e87p-57, -0x1.1072534a57e7dp-57, -0x1.9f7fdbfa08d9ap-57, -0x1.26fb3e2b1d1dap-57,
    0x1.24dc46c1ea664p-57, 0x1.a3398064df33ep-57, 0x1.cfce744870f57p-58, -0x1.4f689f8434011p-57,
    -0x1.a37794d03657dp-58, -0x1.61578001e015ep-59, 0x1.e8637950dc20dp-57, 0x1.355519b0de535p-57,
    -0x1.08ec217a5022dp-57, 0x1.bdcfde8061c03p-56, 0x1.3f415699663ecp-63, 0x1.ce63eab883727p-61,
    0x1.9f1a39d500e3cp-56, -0x1.dbd7ac258a2bdp-58, 0x1.7ad24c13f040fp-56, -0x1.1e99b72bd7bf2p-57,
    -0x1.16ea62c048cfbp-56, 0x1.cbcd735d03424p-60, -0x1.f79f6c1059cdbp-57, -0x1.7a42642661c62p-61,
    -0x1.4b366b609027ap-58, -0x1.d8db0a7cc1543p-56, -0x1.fb2a49af933e8p-57, -0x1.7dc9c7c23801fp-56,
};
// ln 2 = _dr_ln2_hi + _dr_ln2_lo, the first with 12 low zero bits
static const double _dr_ln2_hi = 0x1.62e42fefa3000p-1, _dr_ln2_lo = 0x1.3de6af278ece6p-42;
// END log table

// The special cases below are read off the bits of x, as in _dr_log.
//
// x^y = 1 whatever the other is: |x| = 1 (the sign of -1 is set apart), y = 0
static inline __attribute__((always_inline)) bool _dr_pow_unit(double ax, double y) {
    return (_dr_double_to_bits(ax) == 0x3ff0000000000000LL) | (y == 0.0);
}

// The sign and the special values common to both dtypes, given r = e^(y log|x|):
// -r for x < 0 (and -0) with an odd integer y, NaN for a finite x < 0 with y
// not an integer (|y| >= 2^53 is an even integer: y / 2 is one too).
static inline __attribute__((always_inline)) double _dr_pow_sign(double x, double y, double r) {
    const uint64_t ub = (uint64_t)_dr_double_to_bits(x);
    const double h = y * 0.5;
    const bool integer = std::floor(y) == y;
    const bool odd = integer & (std::floor(h) != h);
    r = ((ub >> 63) & odd) ? -r : r;  // (std::signbit does not vectorise)
    const bool negative = (ub > 0x8000000000000000ULL) & (ub < 0xfff0000000000000ULL);
    return (negative & !integer) ? std::numeric_limits<double>::quiet_NaN() : r;
}

// y log|x| for the special x, where the table's log is not defined: +-inf
// (then e^t is 0 or inf) or NaN; 0 for x = +-1 or y = 0 (x^0 = 1^y = 1, NaN
// included). t is y log|x| elsewhere.
static inline __attribute__((always_inline)) double _dr_pow_special(double ax, double y, double t) {
    const double inf = std::numeric_limits<double>::infinity();
    const uint64_t ub = (uint64_t)_dr_double_to_bits(ax);
    t = (ub == 0) ? -inf * y : t;
    t = (ub == 0x7ff0000000000000ULL) ? inf * y : t;
    t = (ub > 0x7ff0000000000000ULL) ? ax : t;
    return _dr_pow_unit(ax, y) ? 0.0 : t;
}

// x = 2^e m for a normal x > 0, m in [0x1.69p-1, 0x1.69p+0) (the offset of
// kernels/cpu/tables.py), i the table's interval of m: its 7 bits below e's
static inline __attribute__((always_inline)) void _dr_log_split(double x, int32_t &i, double &m,
                                                                double &e) {
    const uint64_t shifted = (uint64_t)_dr_double_to_bits(x) - 0x3fe6900000000000ULL;
    i = (int32_t)((shifted >> 45) & 127);
    m = _dr_bits_to_double((int64_t)((shifted & 0x000fffffffffffffULL) + 0x3fe6900000000000ULL));
    e = (double)((int64_t)shifted >> 52);
}

// The float pow computes in double: log|x| within about 2^-52 relative (r by
// its series to r^5, within 2^-40 r), t = y log|x| within 2^-33 absolute
// wherever e^t is a float, e^t = 2^k e^s with |s| <= ln2/2 by Taylor to s^8
// (within 2^-32), then one rounding to float.
static inline __attribute__((always_inline)) float _dr_pow(float xf, float yf) {
    const double x = xf, y = yf, ax = std::fabs(x);
    // a float is a normal double: no subnormal scaling here
    int32_t i;
    double m, e;
    _dr_log_split(ax, i, m, e);
    const double r = std::fma(m, _dr_log_invc[i], -1.0);
    double p = 0.2;
    p = p * r - 0.25;
    p = p * r + 0.3333333333333333;
    p = p * r - 0.5;
    const double lg = e * 0.6931471805599453 + _dr_log_c_hi[i] + (r + r * r * p);
    double t = _dr_pow_special(ax, y, y * lg);
    // beyond +-200 the float is 0 or inf either way; the clamp keeps 2^k normal
    t = t < -200.0 ? -200.0 : t;
    t = t > 200.0 ? 200.0 : t;
    const double kj = t * 1.4426950408889634 + _dr_round_magic;
    const double k = kj - _dr_round_magic;
    const double s = std::fma(-k, 0.6931471805599453, t);
    double q = 2.48015873015873e-05;  // 1/8!
    q = q * s + 1.984126984126984e-04;
    q = q * s + 1.388888888888889e-03;
    q = q * s + 8.333333333333333e-03;
    q = q * s + 4.1666666666666664e-02;
    q = q * s + 1.6666666666666666e-01;
    q = q * s + 0.5;
    q = q * s + 1.0;
    q = q * s + 1.0;
    const int64_t kb = _dr_double_to_bits(kj) - _dr_double_to_bits(_dr_round_magic);
    const double scale = _dr_bits_to_double((int64_t)((uint64_t)(kb + 1023) << 52));
    return (float)_dr_pow_sign(x, y, q * scale);
}

// log x = hi + lo within about 2^-66 relative, for a finite x > 0: every
// step that rounds keeps its error (exact products by FMA, TwoSums), and the
// series r - r^2/2 + ... - r^8/8 takes its r^2 exactly. The double pow needs
// that much: e^t with |t| up to 745 turns an absolute error in t into the
// same relative error in the result.
static inline __attribute__((always_inline)) double _dr_log_dd(double x, double &lo) {
    const bool tiny = x < 2.2250738585072014e-308;  // subnormal: scale up first
    int32_t i;
    double m, e;
    _dr_log_split(tiny ? x * 4503599627370496.0 : x, i, m, e);  // 2^52
    e -= tiny ? 52.0 : 0.0;
    // m invc = 1 + rh + rl exactly: the product is ph + rl, ph - 1 is exact
    const double invc = _dr_log_invc[i];
    const double ph = m * invc;
    const double rl = std::fma(m, invc, -ph);
    const double rh = ph - 1.0;
    // e ln2 + log c (e _dr_ln2_hi is exact; |it| >= |log c| unless it is 0)
    const double a = e * _dr_ln2_hi;
    const double s1 = a + _dr_log_c_hi[i];
    const double e1 = _dr_log_c_hi[i] - (s1 - a);
    // + rh (either may be the larger)
    double s2, e2;
    _dr_two_sum(s1, rh, s2, e2);
    // - rh^2 / 2 = qh + ql exactly
    const double qh = -0.5 * rh * rh;
    const double ql = std::fma(-0.5 * rh, rh, -qh);
    double s3, e3;
    _dr_two_sum(s2, qh, s3, e3);
    // r^3/3 - r^4/4 + ... - r^8/8: the next term is below 2^-67 |r|
    double p = -0.125;
    p = p * rh + 0.14285714285714285;
    p = p * rh - 0.16666666666666666;
    p = p * rh + 0.2;
    p = p * rh - 0.25;
    p = p * rh + 0.3333333333333333;
    const double l = (e1 + e2 + e3 + ql) + (e * _dr_ln2_lo + _dr_log_c_lo[i]) +
                     (p * (rh * rh * rh) + rl * (1.0 - rh));
    const double h = s3 + l;
    lo = (s3 - h) + l;
    return h;
}

// The double pow: t = y log|x| as th + tl (an exact product plus y lo), then
// e^th (1 + tl) with _dr_exp, whose error (and flush to zero below 2^-1022)
// it inherits.
static inline __attribute__((always_inline)) double _dr_pow(double x, double y) {
    const double ax = std::fabs(x);
    double ll;
    const double lh = _dr_log_dd(ax, ll);
    const double th = _dr_pow_special(ax, y, y * lh);
    const double tl = _dr_pow_unit(ax, y) ? 0.0 : std::fma(y, lh, -y * lh) + y * ll;
    const double ex = _dr_exp(th);
    // 0 and inf stay (there tl may be NaN), so does NaN
    const double r = ((ex > 0.0) & (ex < std::numeric_limits<double>::infinity()))
                         ? std::fma(ex, tl, ex) : ex;
    return _dr_pow_sign(x, y, r);
}
#else
static inline float _dr_pow(float x, float y) { return std::pow(x, y); }
static inline double _dr_pow(double x, double y) { return std::pow(x, y); }
#endif

// sin(x) / x, 1 at 0, as sin(t) / t with t = 1e-30 at 0 (where sin t = t
// exactly): with "x == 0 ? 1 : sin(x) / x", GCC makes the double sine's
// SIMD-clone call conditional, and the loop ran 4x slower
static inline __attribute__((always_inline)) float _dr_sinxdivx(float x) {
    const float t = x == 0.0f ? 1e-30f : x;
    return _dr_sin(t) / t;
}
static inline __attribute__((always_inline)) double _dr_sinxdivx(double x) {
    const double t = x == 0.0 ? 1e-30 : x;
    return _dr_sin(t) / t;
}

// ---------------------------------------------------------------- atan, asin, acos, atan2
// The float versions compute in double, then round once to float: within 0.51
// ulp (tests/cpu/test_cpu_math.py checks 1). No branch, one division (and a
// square root for asin and acos), so the loop stays vectorised; the C
// library's are a call per value, which kept the whole j-loop scalar (10-50x
// slower than a loop with exp). The double versions follow, within 0.85
// (atan), 1.52 (asin), 1.03 (acos) and 1.46 ulp (atan2) measured.
//
// atan u for |u| <= tan(pi/8) (and a little beyond): u + u z P(z), z = u^2,
// P of degree 6 within 3e-12 (kernels/cpu/fit_coefficients.py)
static inline __attribute__((always_inline)) double _dr_atan_small(double u) {
    const double z = u * u;
    double p = -0.04041314026470638;
    p = p * z + 0.07134420201218257;
    p = p * z - 0.09028824015576213;
    p = p * z + 0.11107482298859685;
    p = p * z - 0.14285612049555613;
    p = p * z + 0.19999998911296413;
    p = p * z - 0.33333333331428355;
    return u + u * z * p;
}

// the angle of (ax, ay) in [0, pi/2], for ax, ay >= 0, by one division: u =
// ay / ax below pi/8, (ay - ax) / (ay + ax) + pi/4 up to 3pi/8, -ax / ay + pi/2
// above. 0 for (0, 0) and pi/4 for (inf, inf) are the caller's; NaN gives NaN
static inline __attribute__((always_inline)) double _dr_angle(double ay, double ax) {
    const bool low = ay <= ax * 0.41421356237309503;  // tan(pi/8)
    const bool mid = ay <= ax * 2.414213562373095;    // tan(3pi/8)
    const double n = low ? ay : (mid ? ay - ax : -ax);
    const double d = low ? ax : (mid ? ay + ax : ay);
    const double base = low ? 0.0 : (mid ? 0.7853981633974483 : 1.5707963267948966);
    return base + _dr_atan_small(n / d);
}

// the float of r with the sign of x flipped in when x is negative (-0 included)
static inline __attribute__((always_inline)) float _dr_with_sign(double r, float x) {
    return _dr_bits_to_float(_dr_float_to_bits((float)r) ^
                             (_dr_float_to_bits(x) & (int32_t)0x80000000));
}

static inline __attribute__((always_inline)) float _dr_atan(float x) {
    return _dr_with_sign(_dr_angle(std::fabs((double)x), 1.0), x);
}

// atan2 with C's special values: (+-0, +0) +-0, (+-0, -0) +-pi, (+-inf, +-inf)
// +-pi/4 and +-3pi/4, (y, -inf) +-pi, (+-inf, x) +-pi/2, NaN if either is
static inline __attribute__((always_inline)) float _dr_atan2(float y, float x) {
    const double ay = std::fabs((double)y), ax = std::fabs((double)x);
    // the special cases from the bits (see _dr_log), of the doubles: masks of
    // the doubles' width, which GCC converts to the other selects' masks
    const uint64_t by = (uint64_t)_dr_double_to_bits(ay), bx = (uint64_t)_dr_double_to_bits(ax);
    const uint64_t inf = 0x7ff0000000000000ULL;
    double t = _dr_angle(ay, ax);
    t = ((by | bx) == 0) ? 0.0 : t;
    t = ((by == inf) & (bx == inf)) ? 0.7853981633974483 : t;
    t = (_dr_double_to_bits((double)x) < 0) ? 3.141592653589793 - t : t;  // x < 0, or -0
    return _dr_with_sign(t, y);
}

// asin of a = |x| in [0, 1]: a + a z Q(z), z = a^2, up to 1/2; above,
// pi/2 - 2 asin(s) with s = sqrt((1 - a) / 2) <= 1/2 (so s = sqrt(z), z =
// (1 - a) / 2, the same Q). *far says which; this returns asin of the argument
// of Q (a or s), Q of degree 7 within 4e-12 (kernels/cpu/fit_coefficients.py).
// a > 1 gives NaN (the square root of a negative number), so does NaN
static inline __attribute__((always_inline)) double _dr_asin_reduced(double a, bool &far) {
    far = a > 0.5;
    const double z = far ? (1.0 - a) * 0.5 : a * a;
    const double v = far ? std::sqrt(z) : a;
    double q = 0.029308260610512688;
    q = q * z + 0.005440742124097075;
    q = q * z + 0.019307031824078308;
    q = q * z + 0.022132323932527447;
    q = q * z + 0.030397643578898906;
    q = q * z + 0.044642358133837885;
    q = q * z + 0.07500000599311069;
    q = q * z + 0.16666666665494026;
    return v + v * z * q;
}

static inline __attribute__((always_inline)) float _dr_asin(float x) {
    bool far;
    const double s = _dr_asin_reduced(std::fabs((double)x), far);
    return _dr_with_sign(far ? 1.5707963267948966 - 2.0 * s : s, x);
}

// acos x = pi/2 - asin x up to |x| = 1/2; above, 2 asin(s) for x > 0 and
// pi - 2 asin(s) for x < 0 (s as in _dr_asin_reduced): no cancellation
static inline __attribute__((always_inline)) float _dr_acos(float x) {
    bool far;
    const double s = _dr_asin_reduced(std::fabs((double)x), far);
    const bool negative = (double)x < 0.0;  // a mask of the doubles' width
    const double near_zero = 1.5707963267948966 - (negative ? -s : s);
    const double far_out = negative ? 3.141592653589793 - 2.0 * s : 2.0 * s;
    return (float)(far ? far_out : near_zero);
}

// The double versions: the same reductions with more steps and the constants
// in two doubles. atan u for |u| <= 7/16 (and a little beyond): u + u z P(z),
// P of degree 10 within 2e-17 (kernels/cpu/fit_coefficients.py)
static inline __attribute__((always_inline)) double _dr_atan_small_d(double u, double z) {
    double p = -0.017251187306319703;
    p = p * z + 0.037552789817764796;
    p = p * z - 0.05023314840799564;
    p = p * z + 0.05845435624168408;
    p = p * z - 0.0666294227738582;
    p = p * z + 0.07692063578794404;
    p = p * z - 0.09090899042053072;
    p = p * z + 0.11111110868552225;
    p = p * z - 0.14285714282699905;
    p = p * z + 0.19999999999985343;
    p = p * z - 0.3333333333333332;
    return u * z * p;  // atan u - u
}

// the angle of (ax, ay) in [0, pi/2] (ax, ay >= 0 and below 2^1020), by one
// division into |u| <= 7/16 around the angles 0, atan(1/2), pi/4, atan(3/2)
// and pi/2 (as in float, more of them): u = ay / ax, (2 ay - ax) / (2 ax + ay),
// (ay - ax) / (ay + ax), (2 ay - 3 ax) / (2 ax + 3 ay), -ax / ay; each
// numerator and denominator is one rounding (FMAs), and the base angle is
// added in two doubles. (0, 0) and (inf, inf) are the caller's
static inline __attribute__((always_inline)) double _dr_angle_d(double ay, double ax) {
    const bool c1 = ay <= ax * 0.4375, c2 = ay <= ax * 0.6875, c3 = ay <= ax * 1.1875,
               c4 = ay <= ax * 2.4375;
    const double n = c1 ? ay : c2 ? 2.0 * ay - ax : c3 ? ay - ax : c4 ? std::fma(-3.0, ax, 2.0 * ay) : -ax;
    const double d = c1 ? ax : c2 ? std::fma(2.0, ax, ay) : c3 ? ay + ax : c4 ? std::fma(3.0, ay, 2.0 * ax) : ay;
    const double hi = c1 ? 0.0 : c2 ? 0x1.dac670561bb4fp-2 : c3 ? 0x1.921fb54442d18p-1
                    : c4 ? 0x1.f730bd281f69bp-1 : 0x1.921fb54442d18p+0;
    const double lo = c1 ? 0.0 : c2 ? 0x1.a2b7f222f65e2p-56 : c3 ? 0x1.1a62633145c07p-55
                    : c4 ? 0x1.007887af0cbbdp-56 : 0x1.1a62633145c07p-54;
    const double u = n / d;
    return hi + (u + (_dr_atan_small_d(u, u * u) + lo));
}

static inline __attribute__((always_inline)) double _dr_atan(double x) {
    return _dr_with_sign(_dr_angle_d(std::fabs(x), 1.0), x);
}

static inline __attribute__((always_inline)) double _dr_atan2(double y, double x) {
    double ay = std::fabs(y), ax = std::fabs(x);
    // powers of two keep the FMAs of _dr_angle_d finite and subnormals exact
    const double big = ay > ax ? ay : ax;
    const double scale = big > 0x1p1020 ? 0x1p-8 : (big < 0x1p-1000 ? 0x1p600 : 1.0);
    const uint64_t by = (uint64_t)_dr_double_to_bits(ay), bx = (uint64_t)_dr_double_to_bits(ax);
    const uint64_t inf = 0x7ff0000000000000ULL;
    ay *= scale;
    ax *= scale;
    double t = _dr_angle_d(ay, ax);
    t = ((by | bx) == 0) ? 0.0 : t;
    t = ((by == inf) & (bx == inf)) ? 0x1.921fb54442d18p-1 : t;
    t = (_dr_double_to_bits(x) < 0) ? (0x1.921fb54442d18p+1 - t) + 0x1.1a62633145c07p-53 : t;
    return _dr_with_sign(t, y);
}

// asin of a = |x| as in float: hi + lo pieces. Q of degree 12 within 4e-18
// (kernels/cpu/fit_coefficients.py). Near (a <= 1/2): asin a = a + w. Far:
// asin a = pi/2 - 2 (s + w), s = sqrt(z) rounded, w = asin(sqrt z) - s
// including the square root's rounding (an FMA residual)
static inline __attribute__((always_inline)) double _dr_asin_parts(double a, bool &far, double &s,
                                                                   double &w) {
    far = a > 0.5;
    const double z = far ? (1.0 - a) * 0.5 : a * a;
    s = far ? std::sqrt(z) : a;
    double q = 0.028762997617254007;
    q = q * z - 0.014859264309819783;
    q = q * z + 0.01740549629132425;
    q = q * z + 0.005455850831324312;
    q = q * z + 0.010323189996124416;
    q = q * z + 0.011479121292946488;
    q = q * z + 0.013971218548752051;
    q = q * z + 0.0173523923576202;
    q = q * z + 0.022372172957091412;
    q = q * z + 0.030381944138170334;
    q = q * z + 0.04464285714635991;
    q = q * z + 0.0749999999999843;
    q = q * z + 0.16666666666666669;
    // (the smallest subnormal keeps 0 / 0 away at a = 1; one select on far alone:
    // a select of a combined bool did not vectorise)
    const double c = far ? std::fma(-s, s, z) / (s + s + 0x1p-1074) : 0.0;
    w = c + s * z * q;
    return z;
}

static inline __attribute__((always_inline)) double _dr_asin(double x) {
    bool far;
    double s, w;
    _dr_asin_parts(std::fabs(x), far, s, w);
    const double r = far ? (0x1.921fb54442d18p+0 - 2.0 * s) + (0x1.1a62633145c07p-54 - 2.0 * w)
                         : s + w;
    return _dr_with_sign(r, x);
}

static inline __attribute__((always_inline)) double _dr_acos(double x) {
    bool far;
    double s, w;
    _dr_asin_parts(std::fabs(x), far, s, w);
    const bool negative = x < 0.0;
    // near: pi/2 - asin x; far: 2 asin(s) (x > 0) or pi - 2 asin(s) (x < 0)
    const double sn = negative ? -s : s, wn = negative ? -w : w;
    const double near_zero = 0x1.921fb54442d18p+0 - (sn + (wn - 0x1.1a62633145c07p-54));
    const double far_out = negative ? (0x1.921fb54442d18p+1 - 2.0 * s) + (0x1.1a62633145c07p-53 - 2.0 * w)
                                    : 2.0 * s + 2.0 * w;
    return far ? far_out : near_zero;
}

// IfElse(c, a, b): a where c >= 0, else b (NaN: b), blended by their bits, so
// that both are computed for every pair: with a select, GCC made an operand's
// SIMD call (the double sine's) conditional, and IfElse(c, Sin(x), Cos(x))
// ran 2.5x slower in float64
static inline __attribute__((always_inline)) float _dr_ifelse(float c, float a, float b) {
    const int32_t m = -(int32_t)(c >= 0.0f);
    return _dr_bits_to_float((_dr_float_to_bits(a) & m) | (_dr_float_to_bits(b) & ~m));
}
static inline __attribute__((always_inline)) double _dr_ifelse(double c, double a, double b) {
    const int64_t m = -(int64_t)(c >= 0.0);
    return _dr_bits_to_double((_dr_double_to_bits(a) & m) | (_dr_double_to_bits(b) & ~m));
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
#undef _DR_BOTH


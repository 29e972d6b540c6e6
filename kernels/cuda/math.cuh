// dredux CUDA kernels: numbers, conversions and element-wise maths.
//
// This text is pasted into every generated kernel, which includes no header:
// NVRTC then compiles it without include paths. Everything a header would
// give is written here: infinities from their bit patterns, float16 loads and
// stores through the PTX conversion instructions (what cuda_fp16.h does), and
// the _dr_* functions that dredux/codegen/render.py spells ops with,
// overloaded for float and double and mapped onto the CUDA maths library.
//
// Expects the typedefs T (formula type), ACC (accumulator type) and the macro
// _DR_FAST_MATH (0 or 1).

#define _DR_IDX_NONE 9223372036854775807LL  // "no index yet": loses every tie

template <typename X> __device__ __forceinline__ X _dr_inf();
template <> __device__ __forceinline__ float _dr_inf<float>() {
    return __int_as_float(0x7f800000);
}
template <> __device__ __forceinline__ double _dr_inf<double>() {
    return __longlong_as_double(0x7ff0000000000000LL);
}

// ---------------------------------------------------------------- storage
// Inputs and states are stored as float16 (raw 16-bit words), float or
// double; values are computed in float (for float16 and float) or double.
__device__ __forceinline__ float _dr_load(const unsigned short* p, long long k) {
    float v;
    asm("cvt.f32.f16 %0, %1;" : "=f"(v) : "h"(p[k]));
    return v;
}
__device__ __forceinline__ float _dr_load(const float* p, long long k) { return p[k]; }
__device__ __forceinline__ double _dr_load(const double* p, long long k) { return p[k]; }

__device__ __forceinline__ void _dr_store(unsigned short* p, long long k, float v) {
    unsigned short h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(v));
    p[k] = h;
}
__device__ __forceinline__ void _dr_store(float* p, long long k, float v) { p[k] = v; }
__device__ __forceinline__ void _dr_store(double* p, long long k, double v) { p[k] = v; }

// ---------------------------------------------------------------- sums
// s = fl(a + b) and err = the exact rounding error (Knuth's TwoSum); there is
// no product here for the compiler to contract into an FMA.
template <typename X> __device__ __forceinline__ X _dr_two_sum(X a, X b, X* err) {
    X s = a + b;
    X bp = s - a;
    *err = (a - (s - bp)) + (b - bp);
    return s;
}

// a product rounded on its own (never fused with a following add), so that
// the compensated sums see the value they account for
__device__ __forceinline__ float _dr_mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double _dr_mul_rn(double a, double b) { return __dmul_rn(a, b); }

// ---------------------------------------------------------------- exp
// 2^u by the hardware's approximate exp2 (MUFU.EX2), subnormal results flushed
// to zero. (The CPU emulator of the tests, a plain C++ compiler, uses exp2f.)
__device__ __forceinline__ float _dr_ex2(float u) {
#ifdef __CUDA_ARCH__
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(u));
    return y;
#else
    return exp2f(u);
#endif
}

// exp(x) with fast maths: the hardware exp2 of x / ln2 in one multiply (2 SASS
// instructions; __expf without -ftz adds a compare and two predicated
// multiplies for subnormal results). The relative error grows with |x|, as
// __expf's; results below the smallest normal flush to zero. The precise path
// keeps CUDA's expf, which already reduces the range (two FMAs) before the
// same MUFU.EX2: 10 SASS instructions on sm_90, its documented bound 2 ulp.
__device__ __forceinline__ float _dr_fast_exp(float x) {
    return _dr_ex2(x * 1.44269504088896341f);
}

// ---------------------------------------------------------------- maths
// The formula's ops (render.py spells them _dr_exp(x), ...). With fast maths
// the CUDA spelling table replaces some of them by intrinsics instead.
#define _DR_UNARY(NAME, F32, F64)                                                    \
    __device__ __forceinline__ float NAME(float x) { return F32(x); }                \
    __device__ __forceinline__ double NAME(double x) { return F64(x); }
_DR_UNARY(_dr_exp, expf, exp)  // CUDA's expf: range reduction + MUFU.EX2, 2 ulp
_DR_UNARY(_dr_log, logf, log)
_DR_UNARY(_dr_sin, sinf, sin)
_DR_UNARY(_dr_cos, cosf, cos)
_DR_UNARY(_dr_asin, asinf, asin)
_DR_UNARY(_dr_acos, acosf, acos)
_DR_UNARY(_dr_atan, atanf, atan)
_DR_UNARY(_dr_sqrt, sqrtf, sqrt)
_DR_UNARY(_dr_rsqrt, rsqrtf, rsqrt)
_DR_UNARY(_dr_abs, fabsf, fabs)
_DR_UNARY(_dr_floor, floorf, floor)
_DR_UNARY(_dr_round, roundf, round)  // halves away from zero, like C's round
#undef _DR_UNARY
__device__ __forceinline__ float _dr_pow(float x, float y) { return powf(x, y); }
__device__ __forceinline__ double _dr_pow(double x, double y) { return pow(x, y); }
__device__ __forceinline__ float _dr_atan2(float y, float x) { return atan2f(y, x); }
__device__ __forceinline__ double _dr_atan2(double y, double x) { return atan2(y, x); }
// sin(x) / x, 1 at 0 (the CPU's is written to keep its loop vectorised)
__device__ __forceinline__ float _dr_ifelse(float c, float a, float b) { return c >= 0.0f ? a : b; }
__device__ __forceinline__ double _dr_ifelse(double c, double a, double b) { return c >= 0.0 ? a : b; }
__device__ __forceinline__ float _dr_sinxdivx(float x) { return x == 0.0f ? 1.0f : sinf(x) / x; }
__device__ __forceinline__ double _dr_sinxdivx(double x) { return x == 0.0 ? 1.0 : sin(x) / x; }

// the exponential of the LogSumExp reductions
__device__ __forceinline__ float _dr_red_exp(float x) {
#if _DR_FAST_MATH
    return _dr_fast_exp(x);
#else
    return expf(x);
#endif
}
__device__ __forceinline__ double _dr_red_exp(double x) { return exp(x); }

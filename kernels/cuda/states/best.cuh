// ------------------------------------------------------------------ Max / Min
// NaN never wins: every comparison with NaN is false.
template <int D, bool MAX> struct _DrBest {
    ACC val[D];
    static __device__ __forceinline__ bool wins(ACC v, ACC w) { return MAX ? v > w : v < w; }
    __device__ __forceinline__ void init() {
#pragma unroll (D <= _dr_unroll ? D : 1)
        for (int d = 0; d < D; ++d) val[d] = MAX ? -_dr_inf<ACC>() : _dr_inf<ACC>();
    }
    __device__ __forceinline__ void begin_tile() {}
    __device__ __forceinline__ void end_tile() {}
    __device__ __forceinline__ void push(const T* f, const T* g, long long j) {
#pragma unroll (D <= _dr_unroll ? D : 1)
        for (int d = 0; d < D; ++d) {
            const ACC v = (ACC)f[d];
            if (wins(v, val[d])) val[d] = v;
        }
    }
    __device__ __forceinline__ void merge(const _DrBest& o) {
#pragma unroll (D <= _dr_unroll ? D : 1)
        for (int d = 0; d < D; ++d)
            if (wins(o.val[d], val[d])) val[d] = o.val[d];
    }
    __device__ __forceinline__ void store(long long r, ACCS* v) const {
#pragma unroll (D <= _dr_unroll ? D : 1)
        for (int d = 0; d < D; ++d) _dr_store(v, r * D + d, val[d]);
    }
    __device__ __forceinline__ void load(long long r, const ACCS* v) {
#pragma unroll (D <= _dr_unroll ? D : 1)
        for (int d = 0; d < D; ++d) val[d] = _dr_load(v, r * D + d);
    }
};

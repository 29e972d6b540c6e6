// ------------------------------------------------------------------ ArgMax / ArgMin
// NaN counts as the worst value (-inf for Max, +inf for Min); equal values go
// to the smaller global index, so the first column wins even at -inf.
template <int D, bool MAX> struct _DrArgBest {
    ACC val[D];
    long long idx[D];
    static __device__ __forceinline__ ACC worst() { return MAX ? -_dr_inf<ACC>() : _dr_inf<ACC>(); }
    static __device__ __forceinline__ bool wins(ACC v, long long j, ACC w, long long k) {
        return (MAX ? v > w : v < w) || (v == w && j < k);
    }
    __device__ __forceinline__ void init() {
#pragma unroll (D <= _dr_unroll ? D : 1)
        for (int d = 0; d < D; ++d) {
            val[d] = worst();
            idx[d] = _DR_IDX_NONE;
        }
    }
    __device__ __forceinline__ void begin_tile() {}
    __device__ __forceinline__ void end_tile() {}
    __device__ __forceinline__ void push(const T* f, const T* g, long long j) {
#pragma unroll (D <= _dr_unroll ? D : 1)
        for (int d = 0; d < D; ++d) {
            ACC v = (ACC)f[d];
            if (v != v) v = worst();
            if (wins(v, j, val[d], idx[d])) {
                val[d] = v;
                idx[d] = j;
            }
        }
    }
    __device__ __forceinline__ void merge(const _DrArgBest& o) {
#pragma unroll (D <= _dr_unroll ? D : 1)
        for (int d = 0; d < D; ++d) {
            if (wins(o.val[d], o.idx[d], val[d], idx[d])) {
                val[d] = o.val[d];
                idx[d] = o.idx[d];
            }
        }
    }
    __device__ __forceinline__ void store(long long r, ACCS* v, long long* ix) const {
#pragma unroll (D <= _dr_unroll ? D : 1)
        for (int d = 0; d < D; ++d) {
            _dr_store(v, r * D + d, val[d]);
            ix[r * D + d] = idx[d];
        }
    }
    __device__ __forceinline__ void load(long long r, const ACCS* v, const long long* ix) {
#pragma unroll (D <= _dr_unroll ? D : 1)
        for (int d = 0; d < D; ++d) {
            val[d] = _dr_load(v, r * D + d);
            idx[d] = ix[r * D + d];
        }
    }
};

// ------------------------------------------------------------------ KMin family
// Per component, the K smallest (value, index) pairs in lexicographic order
// (NaN counts as +inf), stored [k][d] as in Reduction.fields().
template <int D, int K> struct _DrKMin {
    ACC val[K * D];
    long long idx[K * D];
    static __device__ __forceinline__ bool before(ACC v, long long j, ACC w, long long k) {
        return v < w || (v == w && j < k);
    }
    __device__ __forceinline__ void init() {
        for (int q = 0; q < K * D; ++q) {
            val[q] = _dr_inf<ACC>();
            idx[q] = _DR_IDX_NONE;
        }
    }
    __device__ __forceinline__ void begin_tile() {}
    __device__ __forceinline__ void end_tile() {}
    __device__ __forceinline__ void push(const T* f, const T* g, long long j) {
        for (int d = 0; d < D; ++d) {
            ACC v = (ACC)f[d];
            if (v != v) v = _dr_inf<ACC>();
            if (!before(v, j, val[(K - 1) * D + d], idx[(K - 1) * D + d])) continue;
            int p = K - 1;
            while (p > 0 && before(v, j, val[(p - 1) * D + d], idx[(p - 1) * D + d])) {
                val[p * D + d] = val[(p - 1) * D + d];
                idx[p * D + d] = idx[(p - 1) * D + d];
                --p;
            }
            val[p * D + d] = v;
            idx[p * D + d] = j;
        }
    }
    __device__ __forceinline__ void merge(const _DrKMin& o) {
        for (int d = 0; d < D; ++d) {
            ACC mv[K];
            long long mi[K];
            int a = 0, b = 0;  // a + b = k < K: neither list runs out
            for (int k = 0; k < K; ++k) {
                if (before(o.val[b * D + d], o.idx[b * D + d], val[a * D + d], idx[a * D + d])) {
                    mv[k] = o.val[b * D + d];
                    mi[k] = o.idx[b * D + d];
                    ++b;
                } else {
                    mv[k] = val[a * D + d];
                    mi[k] = idx[a * D + d];
                    ++a;
                }
            }
            for (int k = 0; k < K; ++k) {
                val[k * D + d] = mv[k];
                idx[k * D + d] = mi[k];
            }
        }
    }
    __device__ __forceinline__ void store(long long r, ACCS* v, long long* ix) const {
        for (int q = 0; q < K * D; ++q) {
            _dr_store(v, r * (K * D) + q, val[q]);
            ix[r * (K * D) + q] = idx[q];
        }
    }
    __device__ __forceinline__ void load(long long r, const ACCS* v, const long long* ix) {
        for (int q = 0; q < K * D; ++q) {
            val[q] = _dr_load(v, r * (K * D) + q);
            idx[q] = ix[r * (K * D) + q];
        }
    }
};

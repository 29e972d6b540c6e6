// ------------------------------------------------------------------ KMin family
// Per component, the K smallest (value, index) pairs in lexicographic order
// (NaN counts as +inf), stored [k][d] as in Reduction.fields().
template <int D, int K> struct _DrKMin {
    ACC val[K * D];
    long long idx[K * D];
    static __device__ __forceinline__ bool before(ACC v, long long j, ACC w, long long k) {
        return v < w || (v == w && j < k);
    }
    // Lists of up to 32 entries in all (K * D) are kept in registers: every loop
    // over them is unrolled and indexes them by constants only (the insertion
    // is predicated instead of a data-dependent while loop). Longer lists are
    // loops over local memory.
    enum { _in_registers = K * D <= 32 };
    __device__ __forceinline__ void init() {
#pragma unroll
        for (int q = 0; q < K * D; ++q) {
            val[q] = _dr_inf<ACC>();
            idx[q] = _DR_IDX_NONE;
        }
    }
    __device__ __forceinline__ void begin_tile() {}
    __device__ __forceinline__ void end_tile() {}
    // (v, j) into list d when it is among the K best; one compare rejects it
    __device__ __forceinline__ void insert(int d, ACC v, long long j) {
        if (!before(v, j, val[(K - 1) * D + d], idx[(K - 1) * D + d])) return;
        if (_in_registers) {
            bool placed = false;  // entries above p are final once placed
#pragma unroll
            for (int p = K - 1; p > 0; --p) {
                const bool shift = !placed && before(v, j, val[(p - 1) * D + d],
                                                     idx[(p - 1) * D + d]);
                const ACC nv = shift ? val[(p - 1) * D + d] : (placed ? val[p * D + d] : v);
                const long long ni = shift ? idx[(p - 1) * D + d]
                                           : (placed ? idx[p * D + d] : j);
                placed = placed || !shift;
                val[p * D + d] = nv;
                idx[p * D + d] = ni;
            }
            if (!placed) {
                val[d] = v;
                idx[d] = j;
            }
            return;
        }
        int p = K - 1;
        while (p > 0 && before(v, j, val[(p - 1) * D + d], idx[(p - 1) * D + d])) {
            val[p * D + d] = val[(p - 1) * D + d];
            idx[p * D + d] = idx[(p - 1) * D + d];
            --p;
        }
        val[p * D + d] = v;
        idx[p * D + d] = j;
    }
    static __device__ __forceinline__ ACC key(T f) {  // NaN counts as +inf
        const ACC v = (ACC)f;
        return v != v ? _dr_inf<ACC>() : v;
    }
    __device__ __forceinline__ void push(const T* f, const T* g, long long j) {
        if (_in_registers) {
#pragma unroll
            for (int d = 0; d < D; ++d) insert(d, key(f[d]), j);
            return;
        }
        for (int d = 0; d < D; ++d) insert(d, key(f[d]), j);  // not unrolled: D may be large
    }
    // Lists in registers take o's entries one by one (K insertions of constant
    // indices; a merge with running positions into both lists put both in
    // local memory: 240 bytes of stack at K = 10). The order is total (value,
    // then index), so the result is the sorted merge's.
    __device__ __forceinline__ void merge(const _DrKMin& o) {
        if (_in_registers) {
#pragma unroll
            for (int d = 0; d < D; ++d) {
#pragma unroll
                for (int k = 0; k < K; ++k) insert(d, o.val[k * D + d], o.idx[k * D + d]);
            }
            return;
        }
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
#pragma unroll
        for (int q = 0; q < K * D; ++q) {
            _dr_store(v, r * (K * D) + q, val[q]);
            ix[r * (K * D) + q] = idx[q];
        }
    }
    __device__ __forceinline__ void load_entry(long long r, const ACCS* v, const long long* ix,
                                               int q) {
        val[q] = _dr_load(v, r * (K * D) + q);
        idx[q] = ix[r * (K * D) + q];
    }
    __device__ __forceinline__ void load(long long r, const ACCS* v, const long long* ix) {
        if (_in_registers) {
#pragma unroll
            for (int q = 0; q < K * D; ++q) load_entry(r, v, ix, q);
            return;
        }
        for (int q = 0; q < K * D; ++q) load_entry(r, v, ix, q);  // not unrolled
    }
};

// dredux CUDA kernels: the reductions' per-row states (one per thread).
//
// Each state implements, for one output row:
//   init()                 the identity (no column seen)
//   begin_tile/end_tile()  around each shared-memory tile of columns
//   push(f, g, j)          fold in the formula value f[D] (weights g[.]) of the
//                          column with global index j; columns come in order
//   merge(o)               combine with the state of other columns, exactly
//                          as dredux.reductions.Reduction.merge does
//   store(r, ...)/load(r, ...)  row r of the state arrays, in the layout of
//                          Reduction.fields(): field[r * C + c], C components
//
// Expects the typedefs T, ACC, ACCS, the constant _dr_unroll and math.cuh.
// Small arrays are unrolled so that they live in registers; large ones
// (D > _dr_unroll) are loops over local memory.

// ------------------------------------------------------------------ Sum
// MODE 0 direct_sum: acc += f for every column.
// MODE 1 block_sum: each tile is summed apart, then added to acc.
// MODE 2 kahan_scheme: TwoSum per column; the rounding errors gather in comp,
//        which the host adds at finalize (the layout of Reduction.fields()).
template <int D, int MODE> struct _DrSum {
    ACC acc[D];
    ACC part[D];
    ACC comp[D];
    __device__ __forceinline__ void init() {
#pragma unroll (D <= _dr_unroll ? D : 1)
        for (int d = 0; d < D; ++d) {
            acc[d] = (ACC)0;
            if (MODE == 2) comp[d] = (ACC)0;
        }
    }
    __device__ __forceinline__ void begin_tile() {
        if (MODE == 1) {
#pragma unroll (D <= _dr_unroll ? D : 1)
            for (int d = 0; d < D; ++d) part[d] = (ACC)0;
        }
    }
    __device__ __forceinline__ void end_tile() {
        if (MODE == 1) {
#pragma unroll (D <= _dr_unroll ? D : 1)
            for (int d = 0; d < D; ++d) acc[d] += part[d];
        }
    }
    __device__ __forceinline__ void push(const T* f, const T* g, long long j) {
#pragma unroll (D <= _dr_unroll ? D : 1)
        for (int d = 0; d < D; ++d) {
            const ACC v = (ACC)f[d];
            if (MODE == 0) {
                acc[d] += v;
            } else if (MODE == 1) {
                part[d] += v;
            } else {
                ACC err;
                acc[d] = _dr_two_sum(acc[d], v, &err);
                comp[d] += err;
            }
        }
    }
    __device__ __forceinline__ void merge(const _DrSum& o) {
#pragma unroll (D <= _dr_unroll ? D : 1)
        for (int d = 0; d < D; ++d) {
            if (MODE == 2) {
                ACC err;
                acc[d] = _dr_two_sum(acc[d], o.acc[d], &err);
                comp[d] = comp[d] + o.comp[d] + err;
            } else {
                acc[d] += o.acc[d];
            }
        }
    }
    __device__ __forceinline__ void store(long long r, ACCS* a, ACCS* c = 0) const {
#pragma unroll (D <= _dr_unroll ? D : 1)
        for (int d = 0; d < D; ++d) {
            _dr_store(a, r * D + d, acc[d]);
            if (MODE == 2) _dr_store(c, r * D + d, comp[d]);
        }
    }
    __device__ __forceinline__ void load(long long r, const ACCS* a, const ACCS* c = 0) {
#pragma unroll (D <= _dr_unroll ? D : 1)
        for (int d = 0; d < D; ++d) {
            acc[d] = _dr_load(a, r * D + d);
            comp[d] = MODE == 2 ? _dr_load(c, r * D + d) : (ACC)0;
        }
    }
};

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

// ------------------------------------------------------------------ LogSumExp family
// State (m, s[E]) with s = sum_j e^(f_j - shift) g_j, shift = m, or 0 while
// m = -inf (an empty partial: s = 0, never NaN). The caller passes g = 1, the
// weights, or (1, weights) for SumSoftMaxWeight. A column above m rescales s
// first. NaN in f propagates to m and s, as in NumPy. KAHAN carries the
// rounding errors of s in comp (added at finalize).
template <int E, bool KAHAN> struct _DrLse {
    ACC m;
    ACC s[E];
    ACC comp[E];
    __device__ __forceinline__ void init() {
        m = -_dr_inf<ACC>();
#pragma unroll (E <= _dr_unroll ? E : 1)
        for (int e = 0; e < E; ++e) {
            s[e] = (ACC)0;
            comp[e] = (ACC)0;
        }
    }
    __device__ __forceinline__ void begin_tile() {}
    __device__ __forceinline__ void end_tile() {}
    __device__ __forceinline__ void add(int e, ACC t) {
        if (KAHAN) {
            ACC err;
            s[e] = _dr_two_sum(s[e], t, &err);
            comp[e] += err;
        } else {
            s[e] += t;
        }
    }
    __device__ __forceinline__ void push(const T* f, const T* g, long long j) {
        const ACC v = (ACC)f[0];
        if (v > m || v != v) {
            // e^(m - v) is 0 for m = -inf, and NaN for v = NaN (which sticks)
            const ACC scale = _dr_red_exp(m - v);
#pragma unroll (E <= _dr_unroll ? E : 1)
            for (int e = 0; e < E; ++e) {
                s[e] *= scale;
                comp[e] *= scale;
            }
            m = v;
        }
        const ACC shift = (m == -_dr_inf<ACC>()) ? (ACC)0 : m;
        const ACC w = _dr_red_exp(v - shift);
#pragma unroll (E <= _dr_unroll ? E : 1)
        for (int e = 0; e < E; ++e) add(e, KAHAN ? _dr_mul_rn(w, (ACC)g[e]) : w * (ACC)g[e]);
    }
    __device__ __forceinline__ void merge(const _DrLse& o) {
        const ACC ninf = -_dr_inf<ACC>();
        const ACC mm = (m != m || o.m != o.m) ? m + o.m : (m > o.m ? m : o.m);
        const ACC shift = (mm == ninf) ? (ACC)0 : mm;
        const ACC sa = (m == ninf) ? (ACC)0 : _dr_red_exp(m - shift);
        const ACC sb = (o.m == ninf) ? (ACC)0 : _dr_red_exp(o.m - shift);
#pragma unroll (E <= _dr_unroll ? E : 1)
        for (int e = 0; e < E; ++e) {
            if (KAHAN) {
                ACC err;
                s[e] = _dr_two_sum(_dr_mul_rn(s[e], sa), _dr_mul_rn(o.s[e], sb), &err);
                comp[e] = comp[e] * sa + o.comp[e] * sb + err;
            } else {
                s[e] = s[e] * sa + o.s[e] * sb;
            }
        }
        m = mm;
    }
    __device__ __forceinline__ void store(long long r, ACCS* mo, ACCS* so, ACCS* co = 0) const {
        _dr_store(mo, r, m);
#pragma unroll (E <= _dr_unroll ? E : 1)
        for (int e = 0; e < E; ++e) {
            _dr_store(so, r * E + e, s[e]);
            if (KAHAN) _dr_store(co, r * E + e, comp[e]);
        }
    }
    __device__ __forceinline__ void load(long long r, const ACCS* mo, const ACCS* so,
                                         const ACCS* co = 0) {
        m = _dr_load(mo, r);
#pragma unroll (E <= _dr_unroll ? E : 1)
        for (int e = 0; e < E; ++e) {
            s[e] = _dr_load(so, r * E + e);
            comp[e] = KAHAN ? _dr_load(co, r * E + e) : (ACC)0;
        }
    }
};

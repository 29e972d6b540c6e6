// ------------------------------------------------------------------ LogSumExp family
// State (m, s[E]) with s = sum_j e^(f_j - shift) g_j, shift = m, or 0 while
// m = -inf (an empty partial: s = 0, never NaN). The caller passes g = 1, the
// weights, or (1, weights) for SumSoftMaxWeight. A column above m rescales s
// first. NaN in f propagates to m and s, as in NumPy; +inf makes them +inf. KAHAN carries the
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
        // no shift while m is -inf (empty) or +inf (then s is +inf, not NaN)
        const ACC shift = (m == -_dr_inf<ACC>() || m == _dr_inf<ACC>()) ? (ACC)0 : m;
        const ACC w = _dr_red_exp(v - shift);
#pragma unroll (E <= _dr_unroll ? E : 1)
        for (int e = 0; e < E; ++e) add(e, KAHAN ? _dr_mul_rn(w, (ACC)g[e]) : w * (ACC)g[e]);
    }
    __device__ __forceinline__ void merge(const _DrLse& o) {
        const ACC ninf = -_dr_inf<ACC>();
        const ACC mm = (m != m || o.m != o.m) ? m + o.m : (m > o.m ? m : o.m);
        // e^(m - mm): 0 for an empty partial, 1 where m = mm (+inf included)
        const ACC sa = (m == ninf) ? (ACC)0 : (m == mm ? (ACC)1 : _dr_red_exp(m - mm));
        const ACC sb = (o.m == ninf) ? (ACC)0 : (o.m == mm ? (ACC)1 : _dr_red_exp(o.m - mm));
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

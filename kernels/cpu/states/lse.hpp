// ------------------------------------------------------------------ LogSumExp family
// State (m, s[ES]) with s = sum_j e^(f_j - m) w_j, where the weights w are
// (1, g) when ONE (SumSoftMaxWeight, or no weights at all) and g otherwise.
// Each tile is reduced around its own maximum, then merged into the row's
// state exactly like Reduction.merge (empty partials, m = -inf, scale to 0).
// NaN in f propagates to m and s, as in NumPy; +inf in f makes m and s +inf.
template <int E_, int ONE, bool KAHAN> struct LseState {
    static const int ES = ONE + E_;
    A m;
    A s[ES], comp[ES];
    void init() {
        m = -_dr_inf<A>();
        for (int e = 0; e < ES; ++e) s[e] = comp[e] = 0;
    }
    // bitwise | and & (no short circuit) keep these loops branch-free
    static inline T max_nan(T v, T b) { return ((v > b) | (v != v)) ? v : b; }
    static inline A rescale(A from, A to) {
        // e^(from - to) (to >= from); an empty partial (from = -inf) gets 0, and
        // from = to gets 1, +inf included: never NaN
        return from == -_dr_inf<A>() ? (A)0 : (from == to ? (A)1 : _dr_exp(from - to));
    }
    void update(const T* f, const T* g, int nt, int64_t) {
        // pass 1: the tile's maximum
        T mx[W];
        for (int l = 0; l < W; ++l) mx[l] = -_dr_inf<T>();
        int jj = 0;
        for (; jj + W <= nt; jj += W)
#pragma omp simd
            for (int l = 0; l < W; ++l) mx[l] = max_nan(f[jj + l], mx[l]);
        for (int l = 0; jj + l < nt; ++l) mx[l] = max_nan(f[jj + l], mx[l]);
        T mt = mx[0];
        for (int l = 1; l < W; ++l) mt = max_nan(mx[l], mt);
        const A tm = (A)mt;
        // no shift for an empty tile (-inf) or one holding +inf: there the sum is
        // +inf (so the log is +inf, as the maximum says), not e^(inf - inf) = NaN
        const A shift = ((tm == -_dr_inf<A>()) | (tm == _dr_inf<A>())) ? (A)0 : tm;
        // pass 2: sum of e^(f - shift) w, per lane
        A ts[ES][W], tc[ES][W];
        for (int e = 0; e < ES; ++e)
            for (int l = 0; l < W; ++l) ts[e][l] = tc[e][l] = 0;
        jj = 0;
        for (; jj + W <= nt; jj += W)
#pragma omp simd
            for (int l = 0; l < W; ++l) add(ts, tc, l, _dr_exp((A)f[jj + l] - shift), g, jj + l);
        for (int l = 0; jj + l < nt; ++l) add(ts, tc, l, _dr_exp((A)f[jj + l] - shift), g, jj + l);
        // merge (tm, ts) into (m, s)
        const A mn = (m != m || tm != tm) ? m + tm : (m > tm ? m : tm);
        const A sa = rescale(m, mn), sb = rescale(tm, mn);
        for (int e = 0; e < ES; ++e) {
            if (KAHAN) {
                A part = 0, part_c = 0;
                _dr_kahan_into(ts[e], tc[e], part, part_c);
                // volatile: the products must be rounded before TwoSum sees them,
                // not fused into its first addition (-ffp-contract=fast)
                volatile A pa = s[e] * sa, pb = part * sb;
                A hi, lo;
                _dr_two_sum(pa, pb, hi, lo);
                s[e] = hi;
                comp[e] = comp[e] * sa + part_c * sb + lo;
            } else {
                s[e] = s[e] * sa + _dr_sum_lanes(ts[e]) * sb;
            }
        }
        m = mn;
    }
    static inline void add(A (*ts)[W], A (*tc)[W], int l, A x, const T* g, int jj) {
        for (int e = 0; e < ES; ++e) {
            A w = (ONE && e == 0) ? x : x * (A)g[(e - ONE) * TJ + jj];
            if (KAHAN) {
                A y = w - tc[e][l];
                A t = ts[e][l] + y;
                tc[e][l] = (t - ts[e][l]) - y;
                ts[e][l] = t;
            } else {
                ts[e][l] += w;
            }
        }
    }
    void store(void* const* state, int64_t i) const {
        ((A*)state[0])[i] = m;
        A* out = (A*)state[1] + i * ES;
        for (int e = 0; e < ES; ++e) out[e] = s[e];
        if (KAHAN) {
            A* c = (A*)state[2] + i * ES;
            for (int e = 0; e < ES; ++e) c[e] = comp[e];
        }
    }
};

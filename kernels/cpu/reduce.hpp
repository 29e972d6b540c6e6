// dredux CPU kernels: the reductions' per-row states.
//
// A buffered kernel computes the formula for a tile of TJ columns into a
// buffer f[d * TJ + jj] (and the weights into g[e * TJ + jj]), then calls
// RowState::update(f, g, nt, j) for each output row; j is the global index
// of the tile's first column. A fused kernel (FusedSumState, at the end)
// sums the tile in its own j-loop and calls add() instead. store() writes the
// row's partial state into the state arrays in the layout of
// dredux.reductions.Reduction.fields().
//
// Updates work on W independent lanes (lane l sees columns jj = l mod W) so
// that GCC turns them into vector code without reassociating anything; the
// lanes are combined in a fixed order when the tile or the row ends.
//
// Expects typedefs T (formula type) and A (accumulator type) and the
// constants W and TJ.

static const int64_t IDX_NONE = INT64_MAX;  // "no index": loses every tie

template <typename X> static inline X _dr_inf() { return std::numeric_limits<X>::infinity(); }

// s + t exactly as hi + lo (Knuth's TwoSum)
static inline void _dr_two_sum(A a, A b, A& hi, A& lo) {
    A s = a + b;
    A bp = s - a;
    lo = (a - (s - bp)) + (b - bp);
    hi = s;
}

// lane[l] += f[jj] for the jj = l mod W of the tile
static inline void _dr_add_lanes(A* __restrict lane, const T* __restrict f, int nt) {
    int jj = 0;
    for (; jj + W <= nt; jj += W)
#pragma omp simd
        for (int l = 0; l < W; ++l) lane[l] += (A)f[jj + l];
    for (int l = 0; jj + l < nt; ++l) lane[l] += (A)f[jj + l];
}

// Kahan summation per lane: the lane's sum is s - c
static inline void _dr_kahan_lanes(A* __restrict s, A* __restrict c, const T* __restrict f,
                                   int nt) {
    int jj = 0;
    for (; jj + W <= nt; jj += W)
#pragma omp simd
        for (int l = 0; l < W; ++l) {
            A y = (A)f[jj + l] - c[l];
            A t = s[l] + y;
            c[l] = (t - s[l]) - y;
            s[l] = t;
        }
    for (int l = 0; jj + l < nt; ++l) {
        A y = (A)f[jj + l] - c[l];
        A t = s[l] + y;
        c[l] = (t - s[l]) - y;
        s[l] = t;
    }
}

// pairwise sum of the W lanes (W is a power of two)
static inline A _dr_sum_lanes(const A* lane) {
    A tmp[W];
    for (int l = 0; l < W; ++l) tmp[l] = lane[l];
    for (int width = W / 2; width >= 1; width /= 2)
        for (int l = 0; l < width; ++l) tmp[l] += tmp[l + width];
    return tmp[0];
}

// add the Kahan lanes (s - c) into a compensated pair (acc + comp)
static inline void _dr_kahan_into(const A* s, const A* c, A& acc, A& comp) {
    for (int l = 0; l < W; ++l) {
        A hi, lo;
        _dr_two_sum(acc, s[l], hi, lo);
        acc = hi;
        comp += lo - c[l];
    }
}

// ------------------------------------------------------------------ Sum
// (buffered: kahan_scheme, and sums of more components than a fused kernel takes)
// SCHEME 0 direct_sum: the lanes run over the whole row.
// SCHEME 1 block_sum: each tile is summed in lanes, then added to acc.
// SCHEME 2 kahan_scheme: compensated lanes per tile, carried as acc + comp.
template <int D_, int SCHEME> struct SumState {
    A lane[D_][W];
    A acc[D_], comp[D_];
    void init() {
        for (int d = 0; d < D_; ++d) {
            acc[d] = 0;
            comp[d] = 0;
            for (int l = 0; l < W; ++l) lane[d][l] = 0;
        }
    }
    void update(const T* f, const T*, int nt, int64_t) {
        for (int d = 0; d < D_; ++d) {
            if (SCHEME == 0) {
                _dr_add_lanes(lane[d], f + d * TJ, nt);
            } else if (SCHEME == 1) {
                A tile[W] = {};
                _dr_add_lanes(tile, f + d * TJ, nt);
                acc[d] += _dr_sum_lanes(tile);
            } else {
                A s[W] = {}, c[W] = {};
                _dr_kahan_lanes(s, c, f + d * TJ, nt);
                _dr_kahan_into(s, c, acc[d], comp[d]);
            }
        }
    }
    void store(void* const* state, int64_t i) const {
        A* out = (A*)state[0] + i * D_;
        for (int d = 0; d < D_; ++d) out[d] = SCHEME == 0 ? _dr_sum_lanes(lane[d]) : acc[d];
        if (SCHEME == 2) {
            A* c = (A*)state[1] + i * D_;
            for (int d = 0; d < D_; ++d) c[d] = comp[d];
        }
    }
};

// ------------------------------------------------------------------ Max / Min
// NaN never wins: a comparison with NaN is false, so it never replaces a lane.
template <int D_, bool MAX> struct BestState {
    T lane[D_][W];
    void init() {
        for (int d = 0; d < D_; ++d)
            for (int l = 0; l < W; ++l) lane[d][l] = MAX ? -_dr_inf<T>() : _dr_inf<T>();
    }
    static inline T better(T v, T b) { return MAX ? (v > b ? v : b) : (v < b ? v : b); }
    void update(const T* f, const T*, int nt, int64_t) {
        for (int d = 0; d < D_; ++d) {
            const T* fd = f + d * TJ;
            T* b = lane[d];
            int jj = 0;
            for (; jj + W <= nt; jj += W)
#pragma omp simd
                for (int l = 0; l < W; ++l) b[l] = better(fd[jj + l], b[l]);
            for (int l = 0; jj + l < nt; ++l) b[l] = better(fd[jj + l], b[l]);
        }
    }
    void store(void* const* state, int64_t i) const {
        A* out = (A*)state[0] + i * D_;
        for (int d = 0; d < D_; ++d) {
            T b = lane[d][0];
            for (int l = 1; l < W; ++l) b = better(lane[d][l], b);
            out[d] = (A)b;
        }
    }
};

// ------------------------------------------------------------------ ArgMax / ArgMin
// NaN counts as the worst value (-inf for Max, +inf for Min); ties go to the
// smaller global index, as in Reduction.merge. Columns arrive in increasing
// order, so a tile can only change the state if its best value is strictly
// better: each tile is first reduced to its best value in W vector lanes (as
// in BestState), and only a tile that improves on the row's best is searched
// for the first column holding that value.
template <int D_, bool MAX> struct ArgState {
    T val[D_];
    int64_t idx[D_];
    static inline T worst() { return MAX ? -_dr_inf<T>() : _dr_inf<T>(); }
    static inline T better(T v, T b) { return MAX ? (v > b ? v : b) : (v < b ? v : b); }
    void init() {
        for (int d = 0; d < D_; ++d) {
            val[d] = worst();
            idx[d] = IDX_NONE;
        }
    }
    void update(const T* f, const T*, int nt, int64_t j) {
        for (int d = 0; d < D_; ++d) {
            const T* fd = f + d * TJ;
            T lane[W];
            for (int l = 0; l < W; ++l) lane[l] = worst();
            int jj = 0;
            for (; jj + W <= nt; jj += W)
#pragma omp simd
                for (int l = 0; l < W; ++l) lane[l] = better(fd[jj + l], lane[l]);
            for (int l = 0; jj + l < nt; ++l) lane[l] = better(fd[jj + l], lane[l]);
            T best = lane[0];
            for (int l = 1; l < W; ++l) best = better(lane[l], best);
            if (MAX ? best > val[d] : best < val[d]) {
                int k = 0;
                while (!(fd[k] == best)) ++k;  // found: best is one of the tile's values
                val[d] = fd[k];
                idx[d] = j + k;
            } else if (idx[d] == IDX_NONE && nt > 0) {
                idx[d] = j;  // all values so far are the worst or NaN: the first wins
            }
        }
    }
    void store(void* const* state, int64_t i) const {
        A* out = (A*)state[0] + i * D_;
        int64_t* out_idx = (int64_t*)state[1] + i * D_;
        for (int d = 0; d < D_; ++d) {
            out[d] = (A)val[d];
            out_idx[d] = idx[d];
        }
    }
};

// ------------------------------------------------------------------ KMin family
// The K smallest values of each component, sorted, ties by smaller index; NaN
// counts as +inf. A vector pre-test skips the W-column chunks in which no
// value can enter the list, which is most of them once the list has filled.
template <int D_, int K_> struct KMinState {
    T val[D_][K_];
    int64_t idx[D_][K_];
    void init() {
        for (int d = 0; d < D_; ++d)
            for (int k = 0; k < K_; ++k) {
                val[d][k] = _dr_inf<T>();
                idx[d][k] = IDX_NONE;
            }
    }
    static inline T clean(T v) { return v != v ? _dr_inf<T>() : v; }
    inline void insert(int d, T v, int64_t j) {
        T* vd = val[d];
        int64_t* id = idx[d];
        if (!(v < vd[K_ - 1] || (v == vd[K_ - 1] && j < id[K_ - 1]))) return;
        int p = K_ - 1;
        while (p > 0 && (vd[p - 1] > v || (vd[p - 1] == v && id[p - 1] > j))) {
            vd[p] = vd[p - 1];
            id[p] = id[p - 1];
            --p;
        }
        vd[p] = v;
        id[p] = j;
    }
    void update(const T* f, const T*, int nt, int64_t j) {
        for (int d = 0; d < D_; ++d) {
            const T* fd = f + d * TJ;
            // the tile's smallest value first (W vector lanes, NaN never wins):
            // a tile with no value at or below the list's worst is skipped
            T lane[W];
            for (int l = 0; l < W; ++l) lane[l] = _dr_inf<T>();
            for (int jj = 0; jj + W <= nt; jj += W)
#pragma omp simd
                for (int l = 0; l < W; ++l) lane[l] = fd[jj + l] < lane[l] ? fd[jj + l] : lane[l];
            T low = lane[0];
            for (int l = 1; l < W; ++l) low = lane[l] < low ? lane[l] : low;
            const bool full = idx[d][K_ - 1] != IDX_NONE;
            if (full && !(low <= val[d][K_ - 1]) && nt % W == 0) continue;
            int jj = 0;
            for (; jj + W <= nt; jj += W) {
                const T worst = val[d][K_ - 1];
                int hit = 0;
#pragma omp simd reduction(|:hit)
                for (int l = 0; l < W; ++l) hit |= (clean(fd[jj + l]) <= worst);
                if (!hit) continue;
                for (int l = 0; l < W; ++l) insert(d, clean(fd[jj + l]), j + jj + l);
            }
            for (; jj < nt; ++jj) insert(d, clean(fd[jj]), j + jj);
        }
    }
    void store(void* const* state, int64_t i) const {
        A* out = (A*)state[0] + i * K_ * D_;
        int64_t* out_idx = (int64_t*)state[1] + i * K_ * D_;
        for (int k = 0; k < K_; ++k)
            for (int d = 0; d < D_; ++d) {
                out[k * D_ + d] = (A)val[d][k];
                out_idx[k * D_ + d] = idx[d][k];
            }
    }
};

// ------------------------------------------------------------------ LogSumExp family
// State (m, s[ES]) with s = sum_j e^(f_j - m) w_j, where the weights w are
// (1, g) when ONE (SumSoftMaxWeight, or no weights at all) and g otherwise.
// Each tile is reduced around its own maximum, then merged into the row's
// state exactly like Reduction.merge (empty partials, m = -inf, scale to 0).
// NaN in f propagates to m and s, as in NumPy.
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
        // e^(from - to); an empty partial (from = -inf) gets 0, never NaN
        A shift = to == -_dr_inf<A>() ? (A)0 : to;
        return from == -_dr_inf<A>() ? (A)0 : _dr_exp(from - shift);
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
        const A shift = tm == -_dr_inf<A>() ? (A)0 : tm;
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

// ------------------------------------------------------------------ Sum, fused
// The kernel's j-loop sums each tile itself (kernels/cpu/block.cpp, fused) and
// add(d, part) takes the tile's sum of component d: block_sum has one call per
// tile, direct_sum one per row (its tile spans the row).
template <int D_> struct FusedSumState {
    A acc[D_];
    void init() {
        for (int d = 0; d < D_; ++d) acc[d] = 0;
    }
    void add(int d, A part) { acc[d] += part; }
    void store(void* const* state, int64_t i) const {
        A* out = (A*)state[0] + i * D_;
        for (int d = 0; d < D_; ++d) out[d] = acc[d];
    }
};

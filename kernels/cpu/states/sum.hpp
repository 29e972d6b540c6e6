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

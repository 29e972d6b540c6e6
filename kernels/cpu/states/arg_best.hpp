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

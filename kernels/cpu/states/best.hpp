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

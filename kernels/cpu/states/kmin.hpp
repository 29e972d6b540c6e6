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

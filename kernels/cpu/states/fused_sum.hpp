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

// dredux CPU block kernel, generated from kernels/cpu/block.cpp.
// @@TITLE@@
//
// dredux_block computes the partial state of rows [0, m) against columns
// [0, n) on the calling thread. Row variables are (m, dim) row-major, column
// variables are transposed to (dim, n) so that the j-loop reads them with unit
// stride (except those only the contraction loops read, which come as (n, dim)
// rows and are transposed by the panel packing), parameters are flat. For each group of R rows the columns are
// visited in tiles of TJ, in one of two ways (dredux/codegen/cpp.py picks):
//
// * buffered: the generated j-loop computes the formula for the tile into a
//   buffer (a pure map, which GCC vectorises), then each row's state folds
//   the tile in (kernels/cpu/reduce.hpp);
// * fused (Sum, except kahan_scheme): the j-loop adds the formula's values
//   into one accumulator per row and component, declared as an OpenMP simd
//   reduction so that GCC keeps them in vector registers (one lane per
//   column mod the vector width, combined when the loop ends); the tile's
//   sums then go into the row states. No buffer is written or read back.
//
// Contractions over a wide vector dimension (SqDist, Scalprod, Sum of an
// element-wise tree, at D >= 16) are computed first for the whole tile, into
// one buffer of R x TJ values each (the CONTRACT slot): a register-blocked loop
// over blocks of columns, R rows x NV vectors of partial sums in registers,
// the D loop outermost so that each x and y value is loaded once per block
// (a GEMM micro-kernel). The j-loop then reads them as values. Such kernels
// also cut the columns into panels of NP columns whose y values fit the L2
// cache, copy the panel's y values block by block ([block][d][JB], zero
// padded to whole blocks: the micro-kernel then reads one contiguous stream),
// and walk all rows for each panel (the row states live on the heap across
// panels); for the others NP spans every column.

@@MATH@@

typedef @@T@@ T;  // type of the formula's values
typedef @@A@@ A;  // type of the accumulators
static const int W = @@W@@;    // lanes of the reductions
static const int TJ = @@TJ@@;  // columns per tile
static const int R = @@R@@;    // rows per pass
static const int64_t NP = @@NP@@;  // columns per panel
@@VECTOR@@
@@STATES@@

typedef @@STATE@@ RowState;

// Heap storage for the row states and formula buffers too big for a thread's
// stack (dredux/codegen/cpp.py decides which go here); null if out of memory.
template <class U> struct Heap {
    U* const p;
    explicit Heap(size_t count) : p(new (std::nothrow) U[count]) {}
    ~Heap() { delete[] p; }
    Heap(const Heap&) = delete;
    Heap& operator=(const Heap&) = delete;
};

// The rows are visited by clusters, each against its column ranges (a
// block-sparse reduction: dredux/ranges.py; a dense block is one cluster
// [0, m) with one range [0, n)): cluster k is rows [rr[2k], rr[2k + 1]) and
// its column ranges are [cr[2s], cr[2s + 1]) for s in [sl[k], sl[k + 1]). The
// clusters cover [0, m), so every row's state is written; a cluster with no
// range gets the identity.
//
// Returns 0, or 2 if the heap storage could not be allocated.
extern "C" int dredux_block(const void* const* rows_in, const void* const* cols_in,
                            const void* const* params_in, int64_t m, int64_t n,
                            int64_t j0, void* const* state, int64_t nc,
                            const int64_t* rr, const int64_t* sl, const int64_t* cr) {
    (void)rows_in;
    (void)cols_in;
    (void)params_in;
    (void)j0;
@@POINTERS@@
#if @@PANELS@@
    // Panels: each panel of a cluster's column range is packed once, then every
    // row of the cluster visits it (the row states live on the heap meanwhile).
    for (int64_t k = 0; k < nc; ++k) {
        const int64_t ia = rr[2 * k], ie = rr[2 * k + 1];
        const int64_t s0 = sl[k], s1 = sl[k + 1];
        for (int64_t s = s0; s == s0 || s < s1; ++s) {  // one empty pass without ranges
            const int64_t ca = s < s1 ? cr[2 * s] : 0, cb = s < s1 ? cr[2 * s + 1] : 0;
            for (int64_t jp = ca; jp == ca || jp < cb; jp += NP) {
                const int64_t jpe = cb - jp < NP ? cb : jp + NP;
                const bool first = s == s0 && jp == ca, last = s + 1 >= s1 && jpe == cb;
                (void)first;
                (void)last;
@@PANEL@@
                for (int64_t i0 = ia; i0 < ie; i0 += R) {
@@ROWSTATE@@
@@ROWS@@
                    for (int64_t jt = jp; jt < jpe; jt += TJ) {
                        const int nt = (int)(jpe - jt < TJ ? jpe - jt : TJ);
@@TILE@@
@@CONTRACT@@
#pragma omp simd@@SIMD@@
                        for (int jj = 0; jj < nt; ++jj) {
@@PAIR@@
                        }
@@FOLD@@
                    }
@@STORE@@
                }
            }
        }
    }
#else
    // Each pass of R rows walks its cluster's column ranges tile by tile.
    for (int64_t k = 0; k < nc; ++k) {
        const int64_t ia = rr[2 * k], ie = rr[2 * k + 1];
        for (int64_t i0 = ia; i0 < ie; i0 += R) {
@@ROWSTATE@@
@@ROWS@@
            for (int64_t s = sl[k]; s < sl[k + 1]; ++s) {
                const int64_t ca = cr[2 * s], cb = cr[2 * s + 1];
                for (int64_t jt = ca; jt < cb; jt += TJ) {
                    const int nt = (int)(cb - jt < TJ ? cb - jt : TJ);
@@TILE@@
@@CONTRACT@@
#pragma omp simd@@SIMD@@
                    for (int jj = 0; jj < nt; ++jj) {
@@PAIR@@
                    }
@@FOLD@@
                }
            }
@@STORE@@
        }
    }
#endif
    return 0;
}

// The state layout this kernel writes, checked by the loader.
extern "C" const char* dredux_layout(void) { return "@@LAYOUT@@"; }

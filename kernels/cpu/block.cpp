// dredux CPU block kernel, generated from kernels/cpu/block.cpp.
// @@TITLE@@
//
// dredux_block computes the partial state of rows [0, m) against columns
// [0, n) on the calling thread. Row variables are (m, dim) row-major, column
// variables are transposed to (dim, n) so that the j-loop reads them with unit
// stride, parameters are flat. For each group of R rows the columns are
// visited in tiles of TJ: the generated j-loop computes the formula for the
// tile into a buffer (a pure map, which GCC vectorises), then each row's
// state folds the tile in (kernels/cpu/reduce.hpp).

@@MATH@@

typedef @@T@@ T;  // type of the formula's values
typedef @@A@@ A;  // type of the accumulators
static const int W = @@W@@;    // lanes of the reductions
static const int TJ = @@TJ@@;  // columns per tile
static const int R = @@R@@;    // rows per pass

@@REDUCE@@

typedef @@STATE@@ RowState;
static const int D_BUF = @@DBUF@@;  // components of the formula buffer
static const int E_BUF = @@EBUF@@;  // components of the weights buffer

extern "C" int dredux_block(const void* const* rows_in, const void* const* cols_in,
                            const void* const* params_in, int64_t m, int64_t n,
                            int64_t j0, void* const* state) {
    (void)rows_in;
    (void)cols_in;
    (void)params_in;
@@POINTERS@@
    alignas(64) T fbuf[R][D_BUF * TJ];
    alignas(64) T gbuf[R][E_BUF * TJ];
    for (int64_t i0 = 0; i0 < m; i0 += R) {
        RowState st[R];
        for (int r = 0; r < R; ++r) st[r].init();
@@ROWS@@
        for (int64_t jt = 0; jt < n; jt += TJ) {
            const int nt = (int)(n - jt < TJ ? n - jt : TJ);
@@TILE@@
#pragma omp simd
            for (int jj = 0; jj < nt; ++jj) {
@@PAIR@@
            }
            for (int r = 0; r < R; ++r) st[r].update(fbuf[r], gbuf[r], nt, j0 + jt);
        }
        for (int r = 0; r < R && i0 + r < m; ++r) st[r].store(state, i0 + r);
    }
    return 0;
}

// The state layout this kernel writes, checked by the loader.
extern "C" const char* dredux_layout(void) { return "@@LAYOUT@@"; }

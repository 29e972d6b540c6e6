// dredux CPU block kernel, generated from kernels/cpu/block.cpp.
// @@TITLE@@
//
// dredux_block computes the partial state of rows [0, m) against columns
// [0, n) on the calling thread. Row variables are (m, dim) row-major, column
// variables are transposed to (dim, n) so that the j-loop reads them with unit
// stride, parameters are flat. For each group of R rows the columns are
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

@@MATH@@

typedef @@T@@ T;  // type of the formula's values
typedef @@A@@ A;  // type of the accumulators
static const int W = @@W@@;    // lanes of the reductions
static const int TJ = @@TJ@@;  // columns per tile
static const int R = @@R@@;    // rows per pass

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

// Returns 0, or 2 if the heap storage could not be allocated.
extern "C" int dredux_block(const void* const* rows_in, const void* const* cols_in,
                            const void* const* params_in, int64_t m, int64_t n,
                            int64_t j0, void* const* state) {
    (void)rows_in;
    (void)cols_in;
    (void)params_in;
    (void)j0;
@@POINTERS@@
    for (int64_t i0 = 0; i0 < m; i0 += R) {
@@ROWSTATE@@
        for (int r = 0; r < R; ++r) st[r].init();
@@ROWS@@
        for (int64_t jt = 0; jt < n; jt += TJ) {
            const int nt = (int)(n - jt < TJ ? n - jt : TJ);
@@TILE@@
#pragma omp simd@@SIMD@@
            for (int jj = 0; jj < nt; ++jj) {
@@PAIR@@
            }
@@FOLD@@
        }
        for (int r = 0; r < R && i0 + r < m; ++r) st[r].store(state, i0 + r);
    }
    return 0;
}

// The state layout this kernel writes, checked by the loader.
extern "C" const char* dredux_layout(void) { return "@@LAYOUT@@"; }

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

// Returns 0, or 2 if the heap storage could not be allocated.
extern "C" int dredux_block(const void* const* rows_in, const void* const* cols_in,
                            const void* const* params_in, int64_t m, int64_t n,
                            int64_t j0, void* const* state) {
    (void)rows_in;
    (void)cols_in;
    (void)params_in;
    (void)j0;
@@POINTERS@@
    for (int64_t jp = 0; jp == 0 || jp < n; jp += NP) {  // one panel when n == 0
        const int64_t jpe = n - jp < NP ? n : jp + NP;
@@PANEL@@
        for (int64_t i0 = 0; i0 < m; i0 += R) {
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
    return 0;
}

// The state layout this kernel writes, checked by the loader.
extern "C" const char* dredux_layout(void) { return "@@LAYOUT@@"; }

// dredux CUDA block kernel, generated from kernels/cuda/block.cu.
// @@TITLE@@
//
// dredux_reduce computes the partial state of rows [0, m) against columns
// [0, n) of one task, one thread per output row:
// * the row's variables (and the parameters) are read once, into registers
//   (wide ones into local memory), with the parts of the formula that depend
//   on them alone;
// * the block walks the columns in tiles of `_tile` columns that its threads
//   copy together into shared memory (coalesced), then every thread folds
//   the tile into its row's state (registers);
// * the grid's y dimension splits the columns into ranges of `_span`, so that
//   few rows still fill the GPU; range y writes its partial state at row
//   y * m + i of the state arrays, and dredux_merge then combines groups of
//   those partial states on the device with the same merge as the host.
// Inputs are row-major (rows, dim) arrays; index arithmetic is 64-bit.
//
// Contractions over a wide vector dimension (SqDist, Scalprod, Sum of an
// element-wise tree, D >= 16; dredux/codegen/cuda.py) are computed per tile
// of a fixed _DR_TJ columns before the pair loop, GEMM-like: the D axis in
// chunks of _DR_DC components; for each chunk the block stages the tile's y
// values in shared memory as [component][column] (a warp's reads are then
// broadcasts, four columns per 128-bit load), each thread reads its row's
// chunk into registers, and adds to one partial sum per tile column, also in
// registers; the pair loop is then unrolled over the tile's columns so that
// it reads those sums by constant index. No per-thread array of D values
// exists: nothing goes to local memory at any D.
//
// Wide streamed sums (Exp(-SqDist(x, y)) * v, gradients): the pair loop
// stores the tile's scalar weights in registers, then the output loop after it
// sums each output component over the tile's columns (staged in chunks like
// the contractions) and adds one sum per tile to the row's state.
//
// The source includes no header (NVRTC needs no include path).

@@CONFIG@@

@@MATH@@

@@STATES@@

typedef @@STATE@@ _DrState;

extern "C" __global__ void __launch_bounds__(@@THREADS@@)
dredux_reduce(long long _m, long long _n, long long _j0, long long _span, int _tile,
              int _sparse, const long long* __restrict__ _blk,
              const long long* __restrict__ _cr@@INPUTS@@@@OUTPUTS@@) {
    extern __shared__ __align__(16) double _dr_smem[];  // aligned for every T and vector loads
    T* const _dr_sm = reinterpret_cast<T*>(_dr_smem);
    (void)_dr_sm;
    // Dense: block x holds rows [x * blockDim.x, ...) and walks the column range
    // y of _span columns. Block-sparse (_sparse, one column range): block x
    // holds rows [_blk[4x], _blk[4x + 1]) of one row cluster and walks that
    // cluster's column ranges _cr[2s], _cr[2s + 1] for s in [_blk[4x + 2], _blk[4x + 3]).
    long long _i, _rows_end, _s0 = 0, _s1 = 1;
    if (_sparse) {
        const long long* const _b = _blk + 4 * (long long)blockIdx.x;
        _i = _b[0] + threadIdx.x;
        _rows_end = _b[1];
        _s0 = _b[2];
        _s1 = _b[3];
    } else {
        _i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
        _rows_end = _m;
    }
    const bool _active = _i < _rows_end;
    const long long _row = _active ? _i : _rows_end - 1;  // idle threads read a valid row
    (void)_row;
@@ROWS@@
@@SHARED@@
    _DrState _st;
    _st.init();
    for (long long _s = _s0; _s < _s1; ++_s) {
    const long long _jb = _sparse ? _cr[2 * _s] : (long long)blockIdx.y * _span;
    const long long _je = _sparse ? _cr[2 * _s + 1] : ((_jb + _span < _n) ? _jb + _span : _n);
    for (long long _jt = _jb; _jt < _je; _jt += _tile) {
        const int _tn = (int)((_je - _jt < _tile) ? _je - _jt : _tile);
        (void)_tn;
        __syncthreads();  // every thread is done with the previous tile
@@TILE@@
        __syncthreads();
        if (_active) {
            _st.begin_tile();
@@PAIRLOOP@@
                const long long _j = _j0 + _jt + _jj;  // global column index
@@PAIR@@
            }
            _st.end_tile();
        }
@@FOLD@@
    }
    }
    if (_active) _st.store((long long)blockIdx.y * _m + _i, @@STORE_ARGS@@);
}

// Row i of group y: merges the partial states y * group ... (y + 1) * group - 1
// (of `parts`, in column order) into row y * m + i of the outputs.
extern "C" __global__ void
dredux_merge(long long _m, long long _parts, int _group@@PARTS@@@@OUTPUTS@@) {
    const long long _i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (_i >= _m) return;
    const long long _s0 = (long long)blockIdx.y * _group;
    const long long _s1 = (_s0 + _group < _parts) ? _s0 + _group : _parts;
    _DrState _st;
    _st.load(_s0 * _m + _i, @@LOAD_ARGS@@);
    for (long long _s = _s0 + 1; _s < _s1; ++_s) {
        _DrState _o;
        _o.load(_s * _m + _i, @@LOAD_ARGS@@);
        _st.merge(_o);
    }
    _st.store((long long)blockIdx.y * _m + _i, @@STORE_ARGS@@);
}

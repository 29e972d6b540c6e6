// ------------------------------------------------------------------ Sum
// MODE 0 direct_sum: acc += f for every column.
// MODE 1 block_sum: each tile is summed apart, then added to acc.
// MODE 2 kahan_scheme: TwoSum per column; the rounding errors gather in comp,
//        which the host adds at finalize (the layout of Reduction.fields()).
// Streamed wide sums (dredux/codegen/cuda.py) use MODE 0 and add(): the kernel
// sums each tile's columns itself and hands over one sum per component.
template <int D, int MODE> struct _DrSum {
    ACC acc[D];
    ACC part[MODE == 1 ? D : 1];  // only the arrays of the mode (local memory when wide)
    ACC comp[MODE == 2 ? D : 1];
    __device__ __forceinline__ void init() {
#pragma unroll (D <= _dr_unroll ? D : 1)
        for (int d = 0; d < D; ++d) {
            acc[d] = (ACC)0;
            if (MODE == 2) comp[d] = (ACC)0;
        }
    }
    __device__ __forceinline__ void begin_tile() {
        if (MODE == 1) {
#pragma unroll (D <= _dr_unroll ? D : 1)
            for (int d = 0; d < D; ++d) part[d] = (ACC)0;
        }
    }
    __device__ __forceinline__ void end_tile() {
        if (MODE == 1) {
#pragma unroll (D <= _dr_unroll ? D : 1)
            for (int d = 0; d < D; ++d) acc[d] += part[d];
        }
    }
    __device__ __forceinline__ void push(const T* f, const T* g, long long j) {
#pragma unroll (D <= _dr_unroll ? D : 1)
        for (int d = 0; d < D; ++d) {
            const ACC v = (ACC)f[d];
            if (MODE == 0) {
                acc[d] += v;
            } else if (MODE == 1) {
                part[d] += v;
            } else {
                ACC err;
                acc[d] = _dr_two_sum(acc[d], v, &err);
                comp[d] += err;
            }
        }
    }
    __device__ __forceinline__ void add(int d, ACC s) { acc[d] += s; }
    __device__ __forceinline__ void merge(const _DrSum& o) {
#pragma unroll (D <= _dr_unroll ? D : 1)
        for (int d = 0; d < D; ++d) {
            if (MODE == 2) {
                ACC err;
                acc[d] = _dr_two_sum(acc[d], o.acc[d], &err);
                comp[d] = comp[d] + o.comp[d] + err;
            } else {
                acc[d] += o.acc[d];
            }
        }
    }
    __device__ __forceinline__ void store(long long r, ACCS* a, ACCS* c = 0) const {
#pragma unroll (D <= _dr_unroll ? D : 1)
        for (int d = 0; d < D; ++d) {
            _dr_store(a, r * D + d, acc[d]);
            if (MODE == 2) _dr_store(c, r * D + d, comp[d]);
        }
    }
    __device__ __forceinline__ void load(long long r, const ACCS* a, const ACCS* c = 0) {
#pragma unroll (D <= _dr_unroll ? D : 1)
        for (int d = 0; d < D; ++d) {
            acc[d] = _dr_load(a, r * D + d);
            if (MODE == 2) comp[d] = _dr_load(c, r * D + d);
        }
    }
};

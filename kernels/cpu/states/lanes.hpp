// dredux CPU kernels: sums in W vector lanes (Sum and LogSumExp states).

// (_dr_two_sum, hi + lo = a + b exactly, is in kernels/cpu/math.hpp)

// lane[l] += f[jj] for the jj = l mod W of the tile
static inline void _dr_add_lanes(A* __restrict lane, const T* __restrict f, int nt) {
    int jj = 0;
    for (; jj + W <= nt; jj += W)
#pragma omp simd
        for (int l = 0; l < W; ++l) lane[l] += (A)f[jj + l];
    for (int l = 0; jj + l < nt; ++l) lane[l] += (A)f[jj + l];
}

// Kahan summation per lane: the lane's sum is s - c
static inline void _dr_kahan_lanes(A* __restrict s, A* __restrict c, const T* __restrict f,
                                   int nt) {
    int jj = 0;
    for (; jj + W <= nt; jj += W)
#pragma omp simd
        for (int l = 0; l < W; ++l) {
            A y = (A)f[jj + l] - c[l];
            A t = s[l] + y;
            c[l] = (t - s[l]) - y;
            s[l] = t;
        }
    for (int l = 0; jj + l < nt; ++l) {
        A y = (A)f[jj + l] - c[l];
        A t = s[l] + y;
        c[l] = (t - s[l]) - y;
        s[l] = t;
    }
}

// pairwise sum of the W lanes (W is a power of two)
static inline A _dr_sum_lanes(const A* lane) {
    A tmp[W];
    for (int l = 0; l < W; ++l) tmp[l] = lane[l];
    for (int width = W / 2; width >= 1; width /= 2)
        for (int l = 0; l < width; ++l) tmp[l] += tmp[l + width];
    return tmp[0];
}

// add the Kahan lanes (s - c) into a compensated pair (acc + comp)
static inline void _dr_kahan_into(const A* s, const A* c, A& acc, A& comp) {
    for (int l = 0; l < W; ++l) {
        A hi, lo;
        _dr_two_sum(acc, s[l], hi, lo);
        acc = hi;
        comp += lo - c[l];
    }
}

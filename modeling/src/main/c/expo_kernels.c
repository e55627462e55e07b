/*
 * The CPU decoder's BF16 matrix products, compiled ahead of time for AVX2 + FMA.
 *
 * Why C when Kernels.java exists: C2 unrolls the loops four times and spills the accumulators of any register tile
 * wider than eight, so in Java a prompt's rows cannot use the 4x3 tiles that need only 7 loads per 12 multiply-adds
 * (the 8-row tile needs 9 per 8). Here they do, and a prompt's prefill is 18 to 32% faster. A decode step streams
 * its weights from memory and gains little (its prefetches are kept as they cost nothing measurable).
 * docs/benchmarks.md has the measurements side by side.
 *
 * Every output is computed by exactly the operations of Kernels.java, in the same order, so the two give the same
 * bits and either may run (KernelsNativeTest checks it): output (b, j) keeps eight float32 lanes, lane i adding
 * w[j][k] * x[b][k] for k = i, i + 8, ... in order with one fused multiply-add each; the lanes are then summed as
 * ((0+4)+(2+6))+((1+5)+(3+7)). Columns past the last whole group of eight are left to the caller. A tile (several
 * inputs by several weight rows) only changes which outputs are in flight together, never an output's operations.
 *
 * Built with -ffp-contract=off so that the compiler fuses nothing on its own.
 */
#include <immintrin.h>
#include <stdint.h>

#define AVX2 __attribute__((target("avx2,fma")))
#define INLINE static inline __attribute__((always_inline))

/* 1 when this CPU can run the kernels below; the caller falls back to Java otherwise. Compiled for any x86-64. */
int expo_kernels_supported(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

/* Eight BF16 values widened to float32: exact, since BF16 bits are the top half of a float's. */
INLINE AVX2 __m256 widen(const uint16_t *p) {
    __m128i bits = _mm_loadu_si128((const __m128i *) p);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(bits), 16));
}

/* The lanes' sum in Kernels.sum's fixed order. */
INLINE AVX2 float lane_sum(__m256 v) {
    float l[8];
    _mm256_storeu_ps(l, v);
    return ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
}

/*
 * out[m][j + n] for m < M inputs (rows of x, cols apart) and n < N weight rows, over the first vec columns. With
 * prefetch > 0 each weight row's line that many rows ahead is requested as the row is read: a decode step streams
 * every weight once, and the hardware prefetcher alone leaves the loads waiting.
 */
INLINE AVX2 void tile(const int M, const int N, const int prefetch, const uint16_t *w, long cols, int vec,
                      const float *x, float *out, long out_stride, long j) {
    __m256 acc[8][4];
    const uint16_t *row[4];
#pragma GCC unroll 4
    for (int n = 0; n < N; n++) {
        row[n] = w + (j + n) * cols;
    }
#pragma GCC unroll 8
    for (int m = 0; m < M; m++) {
#pragma GCC unroll 4
        for (int n = 0; n < N; n++) {
            acc[m][n] = _mm256_setzero_ps();
        }
    }
    for (int k = 0; k < vec; k += 8) {
        if (prefetch > 0 && (k & 31) == 0) {
#pragma GCC unroll 4
            for (int n = 0; n < N; n++) {
                _mm_prefetch((const char *) (row[n] + prefetch * cols + k), _MM_HINT_T0);
            }
        }
        __m256 wv[4];
#pragma GCC unroll 4
        for (int n = 0; n < N; n++) {
            wv[n] = widen(row[n] + k);
        }
#pragma GCC unroll 8
        for (int m = 0; m < M; m++) {
            __m256 xv = _mm256_loadu_ps(x + m * cols + k);
#pragma GCC unroll 4
            for (int n = 0; n < N; n++) {
                acc[m][n] = _mm256_fmadd_ps(wv[n], xv, acc[m][n]);
            }
        }
    }
#pragma GCC unroll 8
    for (int m = 0; m < M; m++) {
#pragma GCC unroll 4
        for (int n = 0; n < N; n++) {
            out[m * out_stride + j + n] = lane_sum(acc[m][n]);
        }
    }
}

/* Weight rows a decode step's tiles run ahead of in their prefetches (12 KiB at a width of 768). */
#define PREFETCH_ROWS 8

/* tile_MxN reads weights already in cache; tile_MxN_ahead prefetches as it streams them (a decode step's first block). */
#define TILE(M, N) \
    static AVX2 void tile_##M##x##N(const uint16_t *w, long cols, int vec, const float *x, float *out, \
                                    long out_stride, long j) { \
        tile(M, N, 0, w, cols, vec, x, out, out_stride, j); \
    }
#define TILE_AHEAD(M, N) \
    static AVX2 void tile_##M##x##N##_ahead(const uint16_t *w, long cols, int vec, const float *x, float *out, \
                                            long out_stride, long j) { \
        tile(M, N, PREFETCH_ROWS, w, cols, vec, x, out, out_stride, j); \
    }
TILE(8, 1) TILE_AHEAD(8, 1)
TILE(4, 2) TILE_AHEAD(4, 2)
TILE(2, 4) TILE_AHEAD(2, 4)
TILE(1, 4) TILE_AHEAD(1, 4)
TILE(4, 3)
TILE(4, 1)
TILE(2, 3)
TILE(2, 1)
TILE(1, 3)
TILE(1, 1)

typedef void (*tile_fn)(const uint16_t *, long, int, const float *, float *, long, long);
/* A prompt's product: weight rows per group (their BF16 values stay in L2 while every block of inputs passes) and
 * inputs per chunk (their float32 rows stay in L2 while every group passes). */
#define PROMPT_GROUP_BYTES (64 << 10)
#define PROMPT_CHUNK_BYTES (192 << 10)

/* The most input bytes a decode step's tile of eight reads from L1 (its size): wider inputs go four at a time. */
#define DECODE_L1_BYTES (32 << 10)

/*
 * A decode step (eight inputs or fewer): the weights are streamed once, four rows at a time, prefetched by the first
 * block of inputs; the other blocks take the rows while they are in L1. Eight inputs share one tile while their rows
 * fit L1 beside the weights (up to 1024 columns); the down projection's eight rows of 2048 floats do not, and two
 * blocks of four took 22.6 against 31.7 ms for 220 MB of such weights (see docs/benchmarks.md).
 */
static AVX2 void decode_rows(const uint16_t *w, long cols, int vec, const float *x, int batch, float *out,
                             long out_stride, long from, long to) {
    int eights = 8 * 4 * cols <= DECODE_L1_BYTES ? batch / 8 : 0;
    long j = from;
    for (; j + 4 <= to; j += 4) {
        int b = 0;
        int first = 1;
        for (; b + 8 <= 8 * eights; b += 8, first = 0) {
            for (int n = 0; n < 4; n++) {
                (first ? tile_8x1_ahead : tile_8x1)(w, cols, vec, x + b * cols, out + b * out_stride, out_stride,
                                                    j + n);
            }
        }
        for (; b + 4 <= batch; b += 4, first = 0) {
            tile_fn by2 = first ? tile_4x2_ahead : tile_4x2;
            by2(w, cols, vec, x + b * cols, out + b * out_stride, out_stride, j);
            by2(w, cols, vec, x + b * cols, out + b * out_stride, out_stride, j + 2);
        }
        for (; b + 2 <= batch; b += 2, first = 0) {
            (first ? tile_2x4_ahead : tile_2x4)(w, cols, vec, x + b * cols, out + b * out_stride, out_stride, j);
        }
        for (; b < batch; b++, first = 0) {
            (first ? tile_1x4_ahead : tile_1x4)(w, cols, vec, x + b * cols, out + b * out_stride, out_stride, j);
        }
    }
    for (; j < to; j++) {
        int b = 0;
        for (; b + 8 <= 8 * eights; b += 8) {
            tile_8x1(w, cols, vec, x + b * cols, out + b * out_stride, out_stride, j);
        }
        for (; b + 4 <= batch; b += 4) {
            tile_4x1(w, cols, vec, x + b * cols, out + b * out_stride, out_stride, j);
        }
        for (; b < batch; b++) {
            tile_1x1(w, cols, vec, x + b * cols, out + b * out_stride, out_stride, j);
        }
    }
}

/* Rows [from, to) for inputs [0, M): tiles of three weight rows, then the one or two left. */
static AVX2 void prompt_block(tile_fn by3, tile_fn by1, const uint16_t *w, long cols, int vec, const float *x,
                              float *out, long out_stride, long from, long to) {
    long j = from;
    for (; j + 3 <= to; j += 3) {
        by3(w, cols, vec, x, out, out_stride, j);
    }
    for (; j < to; j++) {
        by1(w, cols, vec, x, out, out_stride, j);
    }
}

/*
 * A prompt's rows (more than eight inputs), blocked for the caches: for each chunk of inputs, each group of weight
 * rows passes through 4x3 register tiles for every block of four inputs: 7 loads per 12 multiply-adds, against 9 per
 * 8 in the decode step's tiles.
 */
static AVX2 void prompt_rows(const uint16_t *w, long cols, int vec, const float *x, int batch, float *out,
                             long out_stride, long from, long to) {
    long group = PROMPT_GROUP_BYTES / (2 * cols) / 3 * 3;
    long chunk = PROMPT_CHUNK_BYTES / (4 * cols) / 4 * 4;
    group = group < 3 ? 3 : group;
    chunk = chunk < 4 ? 4 : chunk;
    for (long c0 = 0; c0 < batch; c0 += chunk) {
        long c1 = c0 + chunk < batch ? c0 + chunk : batch;
        for (long j0 = from; j0 < to; j0 += group) {
            long j1 = j0 + group < to ? j0 + group : to;
            long b = c0;
            for (; b + 4 <= c1; b += 4) {
                prompt_block(tile_4x3, tile_4x1, w, cols, vec, x + b * cols, out + b * out_stride, out_stride, j0,
                             j1);
            }
            for (; b + 2 <= c1; b += 2) {
                prompt_block(tile_2x3, tile_2x1, w, cols, vec, x + b * cols, out + b * out_stride, out_stride, j0,
                             j1);
            }
            for (; b < c1; b++) {
                prompt_block(tile_1x3, tile_1x1, w, cols, vec, x + b * cols, out + b * out_stride, out_stride, j0,
                             j1);
            }
        }
    }
}

/*
 * out[b * out_stride + j] = sum over k < cols - cols % 8 of w[j][k] * x[b * cols + k], for b < batch and j in
 * [from, to), in Kernels.java's order (see the top of this file). w holds BF16 bits, rows of cols values.
 */
AVX2 void expo_matmul_bf16(const uint16_t *w, int cols, int from, int to, const float *x, int batch, float *out,
                           int out_stride) {
    int vec = cols - cols % 8;
    if (batch <= 8) {
        decode_rows(w, cols, vec, x, batch, out, out_stride, from, to);
    } else {
        prompt_rows(w, cols, vec, x, batch, out, out_stride, from, to);
    }
}

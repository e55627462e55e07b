package dev.expo.modeling.cpu;

import dev.expo.checkpoint.DType;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/**
 * The decode path's matrix products, in Java with the Vector API: {@code out[b] = W x[b]} for a handful of rows at
 * once, each weight row read once for all of them (the step is bound by streaming the weights, and BF16 halves that),
 * split across cores by output rows.
 */
public final class Kernels {

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_256;
    private static final VectorSpecies<Short> S = ShortVector.SPECIES_128;
    private static final int LANES = F.length();
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    /** Below this much work a product runs on the calling thread alone. */
    private static final long PARALLEL_THRESHOLD = 1 << 16;

    private Kernels() {
    }

    /**
     * {@code out[b][j] = sum_k w[j][k] * x[b][k]} for b in [0, batch), j in [0, rows). The columns must be a multiple
     * of 8.
     */
    public static void matmul(Matrix w, float[][] x, float[][] out, int batch) {
        int cols = w.cols();
        if (cols % LANES != 0) {
            throw new IllegalArgumentException("columns must be a multiple of " + LANES + ": " + cols);
        }
        long work = (long) w.rows() * cols * batch;
        if (work < PARALLEL_THRESHOLD) {
            rows(w, x, out, batch, 0, w.rows());
            return;
        }
        // Chunks of whole tiles, about eight per thread: enough to even out a core that is busy elsewhere.
        int tile = tileRows(w);
        int chunk = Math.max(tile, (w.rows() / (ComputeTeam.SHARED.threads() * 8)) / tile * tile);
        ComputeTeam.SHARED.run(w.rows(), chunk, (from, to) -> rows(w, x, out, batch, from, to));
    }

    private static int tileRows(Matrix w) {
        return Math.max(8, (48 << 10) / (w.cols() * w.dtype().byteSize()));
    }

    /**
     * A tile of weight rows at a time, for every block of four inputs: with many inputs (a prompt) the tile is read
     * from memory once and from cache for the other blocks.
     */
    private static void rows(Matrix w, float[][] x, float[][] out, int batch, int from, int to) {
        int tile = tileRows(w);
        for (int j0 = from; j0 < to; j0 += tile) {
            int j1 = Math.min(to, j0 + tile);
            int b0 = 0;
            if (w.dtype() == DType.BF16) {
                // Eight inputs per converted weight vector while there are eight: half the conversions of four.
                for (; b0 + 8 <= batch; b0 += 8) {
                    rowsBf16x8(w.data(), w.cols(), x, out, b0, j0, j1);
                }
            }
            for (; b0 < batch; b0 += 4) {
                int block = Math.min(4, batch - b0);
                if (w.dtype() == DType.BF16) {
                    rowsBf16(w.data(), w.cols(), x, out, b0, block, j0, j1);
                } else {
                    rowsF32(w.data(), w.cols(), x, out, b0, block, j0, j1);
                }
            }
        }
    }

    /** Eight input rows: eight accumulators per weight vector loaded and widened. */
    private static void rowsBf16x8(MemorySegment w, int cols, float[][] x, float[][] out, int b0, int from, int to) {
        float[] x0 = x[b0];
        float[] x1 = x[b0 + 1];
        float[] x2 = x[b0 + 2];
        float[] x3 = x[b0 + 3];
        float[] x4 = x[b0 + 4];
        float[] x5 = x[b0 + 5];
        float[] x6 = x[b0 + 6];
        float[] x7 = x[b0 + 7];
        for (int j = from; j < to; j++) {
            long rowOffset = (long) j * cols * 2;
            FloatVector a0 = FloatVector.zero(F);
            FloatVector a1 = FloatVector.zero(F);
            FloatVector a2 = FloatVector.zero(F);
            FloatVector a3 = FloatVector.zero(F);
            FloatVector a4 = FloatVector.zero(F);
            FloatVector a5 = FloatVector.zero(F);
            FloatVector a6 = FloatVector.zero(F);
            FloatVector a7 = FloatVector.zero(F);
            for (int k = 0; k < cols; k += LANES) {
                ShortVector bits = ShortVector.fromMemorySegment(S, w, rowOffset + 2L * k, LE);
                FloatVector wv = ((IntVector) bits.convertShape(VectorOperators.S2I, I, 0))
                        .lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
                a0 = wv.fma(FloatVector.fromArray(F, x0, k), a0);
                a1 = wv.fma(FloatVector.fromArray(F, x1, k), a1);
                a2 = wv.fma(FloatVector.fromArray(F, x2, k), a2);
                a3 = wv.fma(FloatVector.fromArray(F, x3, k), a3);
                a4 = wv.fma(FloatVector.fromArray(F, x4, k), a4);
                a5 = wv.fma(FloatVector.fromArray(F, x5, k), a5);
                a6 = wv.fma(FloatVector.fromArray(F, x6, k), a6);
                a7 = wv.fma(FloatVector.fromArray(F, x7, k), a7);
            }
            out[b0][j] = a0.reduceLanes(VectorOperators.ADD);
            out[b0 + 1][j] = a1.reduceLanes(VectorOperators.ADD);
            out[b0 + 2][j] = a2.reduceLanes(VectorOperators.ADD);
            out[b0 + 3][j] = a3.reduceLanes(VectorOperators.ADD);
            out[b0 + 4][j] = a4.reduceLanes(VectorOperators.ADD);
            out[b0 + 5][j] = a5.reduceLanes(VectorOperators.ADD);
            out[b0 + 6][j] = a6.reduceLanes(VectorOperators.ADD);
            out[b0 + 7][j] = a7.reduceLanes(VectorOperators.ADD);
        }
    }

    /** Up to four input rows at a time: four accumulators per weight vector loaded. */
    private static void rowsBf16(MemorySegment w, int cols, float[][] x, float[][] out, int b0, int block, int from,
                                 int to) {
        float[] x0 = x[b0];
        float[] x1 = block > 1 ? x[b0 + 1] : x0;
        float[] x2 = block > 2 ? x[b0 + 2] : x0;
        float[] x3 = block > 3 ? x[b0 + 3] : x0;
        for (int j = from; j < to; j++) {
            long rowOffset = (long) j * cols * 2;
            FloatVector a0 = FloatVector.zero(F);
            FloatVector a1 = FloatVector.zero(F);
            FloatVector a2 = FloatVector.zero(F);
            FloatVector a3 = FloatVector.zero(F);
            for (int k = 0; k < cols; k += LANES) {
                ShortVector bits = ShortVector.fromMemorySegment(S, w, rowOffset + 2L * k, LE);
                FloatVector wv = ((IntVector) bits.convertShape(VectorOperators.S2I, I, 0))
                        .lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
                a0 = wv.fma(FloatVector.fromArray(F, x0, k), a0);
                a1 = wv.fma(FloatVector.fromArray(F, x1, k), a1);
                a2 = wv.fma(FloatVector.fromArray(F, x2, k), a2);
                a3 = wv.fma(FloatVector.fromArray(F, x3, k), a3);
            }
            out[b0][j] = a0.reduceLanes(VectorOperators.ADD);
            if (block > 1) {
                out[b0 + 1][j] = a1.reduceLanes(VectorOperators.ADD);
            }
            if (block > 2) {
                out[b0 + 2][j] = a2.reduceLanes(VectorOperators.ADD);
            }
            if (block > 3) {
                out[b0 + 3][j] = a3.reduceLanes(VectorOperators.ADD);
            }
        }
    }

    private static void rowsF32(MemorySegment w, int cols, float[][] x, float[][] out, int b0, int block, int from,
                                int to) {
        float[] x0 = x[b0];
        float[] x1 = block > 1 ? x[b0 + 1] : x0;
        float[] x2 = block > 2 ? x[b0 + 2] : x0;
        float[] x3 = block > 3 ? x[b0 + 3] : x0;
        for (int j = from; j < to; j++) {
            long rowOffset = (long) j * cols * 4;
            FloatVector a0 = FloatVector.zero(F);
            FloatVector a1 = FloatVector.zero(F);
            FloatVector a2 = FloatVector.zero(F);
            FloatVector a3 = FloatVector.zero(F);
            for (int k = 0; k < cols; k += LANES) {
                FloatVector wv = FloatVector.fromMemorySegment(F, w, rowOffset + 4L * k, LE);
                a0 = wv.fma(FloatVector.fromArray(F, x0, k), a0);
                a1 = wv.fma(FloatVector.fromArray(F, x1, k), a1);
                a2 = wv.fma(FloatVector.fromArray(F, x2, k), a2);
                a3 = wv.fma(FloatVector.fromArray(F, x3, k), a3);
            }
            out[b0][j] = a0.reduceLanes(VectorOperators.ADD);
            if (block > 1) {
                out[b0 + 1][j] = a1.reduceLanes(VectorOperators.ADD);
            }
            if (block > 2) {
                out[b0 + 2][j] = a2.reduceLanes(VectorOperators.ADD);
            }
            if (block > 3) {
                out[b0 + 3][j] = a3.reduceLanes(VectorOperators.ADD);
            }
        }
    }

    /** Work over a range of indices, a sub-range at a time. */
    @FunctionalInterface
    public interface RangeBody {
        void run(int from, int to);
    }

    /**
     * Runs {@code body} over [0, count) split across the {@link ComputeTeam}, in pieces of at least {@code grain}
     * indices; on the calling thread alone when there is only one piece. The pieces must be independent.
     */
    public static void parallelFor(int count, int grain, RangeBody body) {
        int pieces = Math.min(count / Math.max(1, grain), ComputeTeam.SHARED.threads() * 8);
        ComputeTeam.SHARED.run(count, pieces <= 1 ? count : (count + pieces - 1) / pieces, body);
    }

    /**
     * Attention scores of one query head: {@code out[j] = dot(q, key j) * scale} for j in [first, last], the keys
     * {@code n} floats apart from {@code base}. Four keys at a time share each load of the query and keep four
     * independent sums in flight; each sum is exactly {@link #dot}'s.
     */
    public static void scores(float[] q, int qOffset, float[] keys, int base, int n, int first, int last,
                              float scale, float[] out) {
        int vectorEnd = n - n % LANES;
        int j = first;
        for (; j + 3 <= last; j += 4) {
            int k0 = base + j * n;
            int k1 = k0 + n;
            int k2 = k1 + n;
            int k3 = k2 + n;
            FloatVector a0 = FloatVector.zero(F);
            FloatVector a1 = FloatVector.zero(F);
            FloatVector a2 = FloatVector.zero(F);
            FloatVector a3 = FloatVector.zero(F);
            for (int d = 0; d < vectorEnd; d += LANES) {
                FloatVector qv = FloatVector.fromArray(F, q, qOffset + d);
                a0 = qv.fma(FloatVector.fromArray(F, keys, k0 + d), a0);
                a1 = qv.fma(FloatVector.fromArray(F, keys, k1 + d), a1);
                a2 = qv.fma(FloatVector.fromArray(F, keys, k2 + d), a2);
                a3 = qv.fma(FloatVector.fromArray(F, keys, k3 + d), a3);
            }
            out[j] = tail(q, qOffset, keys, k0, vectorEnd, n, a0.reduceLanes(VectorOperators.ADD)) * scale;
            out[j + 1] = tail(q, qOffset, keys, k1, vectorEnd, n, a1.reduceLanes(VectorOperators.ADD)) * scale;
            out[j + 2] = tail(q, qOffset, keys, k2, vectorEnd, n, a2.reduceLanes(VectorOperators.ADD)) * scale;
            out[j + 3] = tail(q, qOffset, keys, k3, vectorEnd, n, a3.reduceLanes(VectorOperators.ADD)) * scale;
        }
        for (; j <= last; j++) {
            out[j] = dot(q, qOffset, keys, base + j * n, n) * scale;
        }
    }

    private static float tail(float[] a, int aOffset, float[] b, int bOffset, int from, int n, float sum) {
        for (int k = from; k < n; k++) {
            sum += a[aOffset + k] * b[bOffset + k];
        }
        return sum;
    }

    /**
     * Attention output of one head: {@code out[d] = sum_j weights[j] * value j [d]} for j in [first, last], the
     * values {@code n} floats apart from {@code base}; 32 outputs at a time stay in registers over all positions.
     * Each sum is exactly that of repeated {@link #axpy} into zeros.
     */
    public static void weightedSum(float[] weights, float[] values, int base, int n, int first, int last,
                                   float[] out, int outOffset) {
        int d = 0;
        for (; d + 4 * LANES <= n; d += 4 * LANES) {
            FloatVector a0 = FloatVector.zero(F);
            FloatVector a1 = FloatVector.zero(F);
            FloatVector a2 = FloatVector.zero(F);
            FloatVector a3 = FloatVector.zero(F);
            for (int j = first; j <= last; j++) {
                FloatVector w = FloatVector.broadcast(F, weights[j]);
                int v = base + j * n + d;
                a0 = FloatVector.fromArray(F, values, v).fma(w, a0);
                a1 = FloatVector.fromArray(F, values, v + LANES).fma(w, a1);
                a2 = FloatVector.fromArray(F, values, v + 2 * LANES).fma(w, a2);
                a3 = FloatVector.fromArray(F, values, v + 3 * LANES).fma(w, a3);
            }
            a0.intoArray(out, outOffset + d);
            a1.intoArray(out, outOffset + d + LANES);
            a2.intoArray(out, outOffset + d + 2 * LANES);
            a3.intoArray(out, outOffset + d + 3 * LANES);
        }
        for (; d + LANES <= n; d += LANES) {
            FloatVector a = FloatVector.zero(F);
            for (int j = first; j <= last; j++) {
                a = FloatVector.fromArray(F, values, base + j * n + d).fma(FloatVector.broadcast(F, weights[j]), a);
            }
            a.intoArray(out, outOffset + d);
        }
        for (; d < n; d++) {
            float a = 0f;
            for (int j = first; j <= last; j++) {
                a += weights[j] * values[base + j * n + d];
            }
            out[outOffset + d] = a;
        }
    }

    /** Dot product of two float arrays over [0, n) starting at the given offsets. */
    public static float dot(float[] a, int aOffset, float[] b, int bOffset, int n) {
        FloatVector acc = FloatVector.zero(F);
        int k = 0;
        for (; k + LANES <= n; k += LANES) {
            acc = FloatVector.fromArray(F, a, aOffset + k).fma(FloatVector.fromArray(F, b, bOffset + k), acc);
        }
        float sum = acc.reduceLanes(VectorOperators.ADD);
        for (; k < n; k++) {
            sum += a[aOffset + k] * b[bOffset + k];
        }
        return sum;
    }

    /** {@code acc[accOffset..] += scale * v[vOffset..]} over n elements. */
    public static void axpy(float scale, float[] v, int vOffset, float[] acc, int accOffset, int n) {
        FloatVector s = FloatVector.broadcast(F, scale);
        int k = 0;
        for (; k + LANES <= n; k += LANES) {
            FloatVector.fromArray(F, v, vOffset + k).fma(s, FloatVector.fromArray(F, acc, accOffset + k))
                    .intoArray(acc, accOffset + k);
        }
        for (; k < n; k++) {
            acc[accOffset + k] += scale * v[vOffset + k];
        }
    }
}

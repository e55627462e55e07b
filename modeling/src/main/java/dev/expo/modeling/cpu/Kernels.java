package dev.expo.modeling.cpu;

import dev.expo.checkpoint.DType;
import dev.expo.checkpoint.Dtypes;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.Objects;

/**
 * The decode path's matrix products, in Java with the Vector API: {@code out[b] = W x[b]} for a handful of rows at
 * once, each weight row read once for all of them (the step is bound by streaming the weights, and BF16 halves that),
 * split across cores by output rows.
 *
 * <p>Every entry point checks its whole index range once before the loops, so that the vector loads inside are
 * in bounds by construction: the inference service runs with the Vector API's per-access bound checks off
 * ({@code -Djdk.incubator.vector.VECTOR_ACCESS_OOB_CHECK=0}, as llama3.java does), which C2 otherwise keeps in some
 * compilations of these loops and which then cost a quarter of a decode step.
 *
 * <p>Attention's kernels ({@link #scores}, {@link #addWeightedSum}) come twice, for a float32 and for a BF16 KV cache
 * ({@code float[]} and {@code short[]}), and the row kernels once per weight dtype and tile, with the loops written
 * out. That is on purpose: these are the decode step's hot loops, and C2 keeps a loop's accumulators in registers
 * only when it sees the whole loop with its loads (docs/benchmarks.md: a tile wider than eight accumulators already
 * spills), which a load behind an interface or a lambda would hide; so each copy stays whole, and the tests hold
 * every copy to the same bits.
 */
public final class Kernels {

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_256;
    private static final VectorSpecies<Short> S = ShortVector.SPECIES_128;
    private static final int LANES = F.length();
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    /**
     * Columns per block when a prompt's rows are too wide for L1 (eight rows of 2048 floats are 64 KiB; L1 holds 32):
     * eight rows of 512 take 16 KiB, and the weight tile's pieces the rest.
     */
    private static final int COLUMN_BLOCK = 512;
    /** Below this much work a product runs on the calling thread alone. */
    private static final long PARALLEL_THRESHOLD = 1 << 16;
    /** Inputs packed for one native call: a prompt's product goes through them a block at a time. */
    private static final int NATIVE_BLOCK = 64;

    private Kernels() {
    }

    /**
     * The sum of a vector's lanes, stored at {@code at}, in one fixed order: ((0+4)+(2+6))+((1+5)+(3+7)). Not
     * {@code reduceLanes(ADD)}, whose order is unspecified and does differ between its interpreted and compiled
     * forms: a row's logits would then depend on which kernel (batch size) and which compilation state it met, and
     * batched greedy outputs could part from solo ones.
     */
    private static float sum(float[] lanes, int at) {
        return ((lanes[at] + lanes[at + 4]) + (lanes[at + 2] + lanes[at + 6]))
                + ((lanes[at + 1] + lanes[at + 5]) + (lanes[at + 3] + lanes[at + 7]));
    }

    private static float sum(FloatVector v) {
        float[] lanes = new float[LANES];
        v.intoArray(lanes, 0);
        return sum(lanes, 0);
    }

    /**
     * {@code out[b][j] = sum_k w[j][k] * x[b][k]} for b in [0, batch), j in [0, rows), in the Java loops (a decoder
     * picks these or the compiled ones through {@link MatrixKernels}).
     */
    public static void matmul(Matrix w, float[][] x, float[][] out, int batch) {
        checkMatmul(w, x, out, batch);
        overWeightRows(w.rows(), (long) w.rows() * w.cols() * batch, tileRows(w),
                (from, to) -> rows(w, x, out, batch, from, to));
    }

    private static void checkMatmul(Matrix w, float[][] x, float[][] out, int batch) {
        int cols = w.cols();
        if (w.data().byteSize() < (long) w.rows() * cols * w.dtype().byteSize()) {
            throw new IllegalArgumentException("weights hold fewer than " + w.rows() + " x " + cols + " values");
        }
        Objects.checkFromIndexSize(0, batch, Math.min(x.length, out.length));
        for (int b = 0; b < batch; b++) {
            Objects.checkFromIndexSize(0, cols, x[b].length);
            Objects.checkFromIndexSize(0, w.rows(), out[b].length);
        }
    }

    /**
     * {@code body} over weight rows [0, rows): on the calling thread below {@link #PARALLEL_THRESHOLD} of work, else
     * across the compute team in pieces of whole {@code unit}s of rows, about eight per thread: enough to even out a
     * core that is busy elsewhere.
     */
    private static void overWeightRows(int rows, long work, int unit, RangeBody body) {
        if (work < PARALLEL_THRESHOLD) {
            body.run(0, rows);
            return;
        }
        int chunk = Math.max(unit, rows / (ComputeTeam.SHARED.threads() * 8) / unit * unit);
        ComputeTeam.SHARED.run(rows, chunk, body);
    }

    /**
     * {@link #matmul} of BF16 weights through the compiled kernels: the inputs packed into one array a block at a
     * time, the weight rows split across the compute team as for the Java loops, the outputs unpacked; the columns
     * past the last whole vector are added in Java, as always.
     */
    static void matmulCompiled(NativeKernels compiled, Matrix w, float[][] x, float[][] out, int batch) {
        checkMatmul(w, x, out, batch);
        int cols = w.cols();
        int rows = w.rows();
        for (int b0 = 0; b0 < batch; b0 += NATIVE_BLOCK) {
            int block = Math.min(NATIVE_BLOCK, batch - b0);
            float[] packed = new float[block * cols];
            for (int b = 0; b < block; b++) {
                System.arraycopy(x[b0 + b], 0, packed, b * cols, cols);
            }
            float[] result = new float[block * rows];
            // Pieces of whole 4x3 tiles and groups of four rows (twelve rows).
            overWeightRows(rows, (long) rows * cols * block, 12,
                    (from, to) -> compiled.matmulBf16(w.data(), cols, from, to, packed, block, result, rows));
            for (int b = 0; b < block; b++) {
                System.arraycopy(result, b * rows, out[b0 + b], 0, rows);
            }
        }
        if (cols % LANES != 0) {
            addTails(w, x, out, batch, 0, rows);
        }
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
        float[] lanes = new float[8 * LANES];   // accumulators stored for their fixed-order sums
        // A prompt whose rows overflow L1 goes through a block of columns at a time (rowsBf16x8ByColumns).
        boolean byColumns = w.dtype() == DType.BF16 && batch > 8 && w.cols() > 2 * COLUMN_BLOCK;
        float[] accumulators = byColumns ? new float[tile * 8 * LANES] : null;
        for (int j0 = from; j0 < to; j0 += tile) {
            int j1 = Math.min(to, j0 + tile);
            int b0 = 0;
            if (w.dtype() == DType.BF16) {
                if (byColumns) {
                    for (; b0 + 8 <= batch; b0 += 8) {
                        rowsBf16x8ByColumns(w.data(), w.cols(), x, out, b0, j0, j1, accumulators);
                    }
                }
                // Eight inputs per converted weight vector while there are eight: half the conversions of four.
                for (; b0 + 8 <= batch; b0 += 8) {
                    rowsBf16x8(w.data(), w.cols(), x, out, b0, j0, j1, lanes);
                }
            }
            for (; b0 < batch; b0 += 4) {
                int block = Math.min(4, batch - b0);
                if (w.dtype() == DType.BF16) {
                    rowsBf16(w.data(), w.cols(), x, out, b0, block, j0, j1, lanes);
                } else {
                    rowsF32(w.data(), w.cols(), x, out, b0, block, j0, j1, lanes);
                }
            }
            if (w.cols() % LANES != 0) {
                addTails(w, x, out, batch, j0, j1);
            }
        }
    }

    /**
     * The columns past the last whole vector (the kernels stop there): their products added in order to each output's
     * lane sum, the same for any batch.
     */
    private static void addTails(Matrix w, float[][] x, float[][] out, int batch, int from, int to) {
        int cols = w.cols();
        for (int j = from; j < to; j++) {
            long row = (long) j * cols;
            for (int b = 0; b < batch; b++) {
                float sum = out[b][j];
                for (int k = cols - cols % LANES; k < cols; k++) {
                    sum += w.value(row + k) * x[b][k];
                }
                out[b][j] = sum;
            }
        }
    }

    /** Eight input rows: eight accumulators per weight vector loaded and widened. */
    private static void rowsBf16x8(MemorySegment w, int cols, float[][] x, float[][] out, int b0, int from, int to,
                                   float[] lanes) {
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
            for (int k = 0; k < cols - cols % LANES; k += LANES) {
                FloatVector wv = widen(w, rowOffset + 2L * k);
                a0 = wv.fma(FloatVector.fromArray(F, x0, k), a0);
                a1 = wv.fma(FloatVector.fromArray(F, x1, k), a1);
                a2 = wv.fma(FloatVector.fromArray(F, x2, k), a2);
                a3 = wv.fma(FloatVector.fromArray(F, x3, k), a3);
                a4 = wv.fma(FloatVector.fromArray(F, x4, k), a4);
                a5 = wv.fma(FloatVector.fromArray(F, x5, k), a5);
                a6 = wv.fma(FloatVector.fromArray(F, x6, k), a6);
                a7 = wv.fma(FloatVector.fromArray(F, x7, k), a7);
            }
            a0.intoArray(lanes, 0);
            a1.intoArray(lanes, LANES);
            a2.intoArray(lanes, 2 * LANES);
            a3.intoArray(lanes, 3 * LANES);
            a4.intoArray(lanes, 4 * LANES);
            a5.intoArray(lanes, 5 * LANES);
            a6.intoArray(lanes, 6 * LANES);
            a7.intoArray(lanes, 7 * LANES);
            out[b0][j] = sum(lanes, 0);
            out[b0 + 1][j] = sum(lanes, LANES);
            out[b0 + 2][j] = sum(lanes, 2 * LANES);
            out[b0 + 3][j] = sum(lanes, 3 * LANES);
            out[b0 + 4][j] = sum(lanes, 4 * LANES);
            out[b0 + 5][j] = sum(lanes, 5 * LANES);
            out[b0 + 6][j] = sum(lanes, 6 * LANES);
            out[b0 + 7][j] = sum(lanes, 7 * LANES);
        }
    }

    /**
     * {@link #rowsBf16x8} a block of columns at a time, for inputs wider than L1: each weight row's eight accumulators
     * are kept in {@code accumulators} between blocks, so every lane adds the same products in the same order as in
     * one pass (the same bits), while the eight input rows' block stays in L1 for the whole tile. With a long prompt
     * the down projection ran at about 62 GFLOP/s unblocked and 68 to 72 blocked (75 against 65 at 7B's width of
     * 14336); a decode step (eight rows or fewer) reads the tile once and gains nothing, so it stays on one pass.
     */
    private static void rowsBf16x8ByColumns(MemorySegment w, int cols, float[][] x, float[][] out, int b0, int from,
                                            int to, float[] accumulators) {
        float[] x0 = x[b0];
        float[] x1 = x[b0 + 1];
        float[] x2 = x[b0 + 2];
        float[] x3 = x[b0 + 3];
        float[] x4 = x[b0 + 4];
        float[] x5 = x[b0 + 5];
        float[] x6 = x[b0 + 6];
        float[] x7 = x[b0 + 7];
        int vectorEnd = cols - cols % LANES;
        Arrays.fill(accumulators, 0, (to - from) * 8 * LANES, 0f);
        for (int k0 = 0; k0 < vectorEnd; k0 += COLUMN_BLOCK) {
            int k1 = Math.min(vectorEnd, k0 + COLUMN_BLOCK);
            for (int j = from; j < to; j++) {
                long rowOffset = (long) j * cols * 2;
                int at = (j - from) * 8 * LANES;
                FloatVector a0 = FloatVector.fromArray(F, accumulators, at);
                FloatVector a1 = FloatVector.fromArray(F, accumulators, at + LANES);
                FloatVector a2 = FloatVector.fromArray(F, accumulators, at + 2 * LANES);
                FloatVector a3 = FloatVector.fromArray(F, accumulators, at + 3 * LANES);
                FloatVector a4 = FloatVector.fromArray(F, accumulators, at + 4 * LANES);
                FloatVector a5 = FloatVector.fromArray(F, accumulators, at + 5 * LANES);
                FloatVector a6 = FloatVector.fromArray(F, accumulators, at + 6 * LANES);
                FloatVector a7 = FloatVector.fromArray(F, accumulators, at + 7 * LANES);
                for (int k = k0; k < k1; k += LANES) {
                    FloatVector wv = widen(w, rowOffset + 2L * k);
                    a0 = wv.fma(FloatVector.fromArray(F, x0, k), a0);
                    a1 = wv.fma(FloatVector.fromArray(F, x1, k), a1);
                    a2 = wv.fma(FloatVector.fromArray(F, x2, k), a2);
                    a3 = wv.fma(FloatVector.fromArray(F, x3, k), a3);
                    a4 = wv.fma(FloatVector.fromArray(F, x4, k), a4);
                    a5 = wv.fma(FloatVector.fromArray(F, x5, k), a5);
                    a6 = wv.fma(FloatVector.fromArray(F, x6, k), a6);
                    a7 = wv.fma(FloatVector.fromArray(F, x7, k), a7);
                }
                a0.intoArray(accumulators, at);
                a1.intoArray(accumulators, at + LANES);
                a2.intoArray(accumulators, at + 2 * LANES);
                a3.intoArray(accumulators, at + 3 * LANES);
                a4.intoArray(accumulators, at + 4 * LANES);
                a5.intoArray(accumulators, at + 5 * LANES);
                a6.intoArray(accumulators, at + 6 * LANES);
                a7.intoArray(accumulators, at + 7 * LANES);
            }
        }
        for (int j = from; j < to; j++) {
            int at = (j - from) * 8 * LANES;
            for (int b = 0; b < 8; b++) {
                out[b0 + b][j] = sum(accumulators, at + b * LANES);
            }
        }
    }

    /** Up to four input rows at a time: four accumulators per weight vector loaded. */
    private static void rowsBf16(MemorySegment w, int cols, float[][] x, float[][] out, int b0, int block, int from,
                                 int to, float[] lanes) {
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
            for (int k = 0; k < cols - cols % LANES; k += LANES) {
                FloatVector wv = widen(w, rowOffset + 2L * k);
                a0 = wv.fma(FloatVector.fromArray(F, x0, k), a0);
                a1 = wv.fma(FloatVector.fromArray(F, x1, k), a1);
                a2 = wv.fma(FloatVector.fromArray(F, x2, k), a2);
                a3 = wv.fma(FloatVector.fromArray(F, x3, k), a3);
            }
            store(a0, a1, a2, a3, lanes, out, b0, block, j);
        }
    }

    private static void rowsF32(MemorySegment w, int cols, float[][] x, float[][] out, int b0, int block, int from,
                                int to, float[] lanes) {
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
            for (int k = 0; k < cols - cols % LANES; k += LANES) {
                FloatVector wv = FloatVector.fromMemorySegment(F, w, rowOffset + 4L * k, LE);
                a0 = wv.fma(FloatVector.fromArray(F, x0, k), a0);
                a1 = wv.fma(FloatVector.fromArray(F, x1, k), a1);
                a2 = wv.fma(FloatVector.fromArray(F, x2, k), a2);
                a3 = wv.fma(FloatVector.fromArray(F, x3, k), a3);
            }
            store(a0, a1, a2, a3, lanes, out, b0, block, j);
        }
    }

    /** Eight BF16 values at {@code offset}, widened to float32 (exact: the BF16 bits are the float's top half). */
    private static FloatVector widen(MemorySegment w, long offset) {
        ShortVector bits = ShortVector.fromMemorySegment(S, w, offset, LE);
        return ((IntVector) bits.convertShape(VectorOperators.S2I, I, 0)).lanewise(VectorOperators.LSHL, 16)
                .reinterpretAsFloats();
    }

    /** Output {@code j} of the first {@code block} of four inputs from their accumulators, in the fixed lane order. */
    private static void store(FloatVector a0, FloatVector a1, FloatVector a2, FloatVector a3, float[] lanes,
                              float[][] out, int b0, int block, int j) {
        a0.intoArray(lanes, 0);
        a1.intoArray(lanes, LANES);
        a2.intoArray(lanes, 2 * LANES);
        a3.intoArray(lanes, 3 * LANES);
        for (int b = 0; b < block; b++) {
            out[b0 + b][j] = sum(lanes, b * LANES);
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
        if (first <= last) {
            Objects.checkFromIndexSize(qOffset, n, q.length);
            Objects.checkFromToIndex(base + first * n, base + (last + 1) * n, keys.length);
            Objects.checkFromToIndex(first, last + 1, out.length);
        }
        int vectorEnd = n - n % LANES;
        float[] lanes = new float[8 * LANES];
        int j = first;
        // Eight keys at a time while there are eight: eight sums in flight keep both multiply-add units busy.
        for (; j + 7 <= last; j += 8) {
            int k0 = base + j * n;
            int k1 = k0 + n;
            int k2 = k1 + n;
            int k3 = k2 + n;
            int k4 = k3 + n;
            int k5 = k4 + n;
            int k6 = k5 + n;
            int k7 = k6 + n;
            FloatVector a0 = FloatVector.zero(F);
            FloatVector a1 = FloatVector.zero(F);
            FloatVector a2 = FloatVector.zero(F);
            FloatVector a3 = FloatVector.zero(F);
            FloatVector a4 = FloatVector.zero(F);
            FloatVector a5 = FloatVector.zero(F);
            FloatVector a6 = FloatVector.zero(F);
            FloatVector a7 = FloatVector.zero(F);
            for (int d = 0; d < vectorEnd; d += LANES) {
                FloatVector qv = FloatVector.fromArray(F, q, qOffset + d);
                a0 = qv.fma(FloatVector.fromArray(F, keys, k0 + d), a0);
                a1 = qv.fma(FloatVector.fromArray(F, keys, k1 + d), a1);
                a2 = qv.fma(FloatVector.fromArray(F, keys, k2 + d), a2);
                a3 = qv.fma(FloatVector.fromArray(F, keys, k3 + d), a3);
                a4 = qv.fma(FloatVector.fromArray(F, keys, k4 + d), a4);
                a5 = qv.fma(FloatVector.fromArray(F, keys, k5 + d), a5);
                a6 = qv.fma(FloatVector.fromArray(F, keys, k6 + d), a6);
                a7 = qv.fma(FloatVector.fromArray(F, keys, k7 + d), a7);
            }
            a0.intoArray(lanes, 0);
            a1.intoArray(lanes, LANES);
            a2.intoArray(lanes, 2 * LANES);
            a3.intoArray(lanes, 3 * LANES);
            a4.intoArray(lanes, 4 * LANES);
            a5.intoArray(lanes, 5 * LANES);
            a6.intoArray(lanes, 6 * LANES);
            a7.intoArray(lanes, 7 * LANES);
            out[j] = tail(q, qOffset, keys, k0, vectorEnd, n, sum(lanes, 0)) * scale;
            out[j + 1] = tail(q, qOffset, keys, k1, vectorEnd, n, sum(lanes, LANES)) * scale;
            out[j + 2] = tail(q, qOffset, keys, k2, vectorEnd, n, sum(lanes, 2 * LANES)) * scale;
            out[j + 3] = tail(q, qOffset, keys, k3, vectorEnd, n, sum(lanes, 3 * LANES)) * scale;
            out[j + 4] = tail(q, qOffset, keys, k4, vectorEnd, n, sum(lanes, 4 * LANES)) * scale;
            out[j + 5] = tail(q, qOffset, keys, k5, vectorEnd, n, sum(lanes, 5 * LANES)) * scale;
            out[j + 6] = tail(q, qOffset, keys, k6, vectorEnd, n, sum(lanes, 6 * LANES)) * scale;
            out[j + 7] = tail(q, qOffset, keys, k7, vectorEnd, n, sum(lanes, 7 * LANES)) * scale;
        }
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
            a0.intoArray(lanes, 0);
            a1.intoArray(lanes, LANES);
            a2.intoArray(lanes, 2 * LANES);
            a3.intoArray(lanes, 3 * LANES);
            out[j] = tail(q, qOffset, keys, k0, vectorEnd, n, sum(lanes, 0)) * scale;
            out[j + 1] = tail(q, qOffset, keys, k1, vectorEnd, n, sum(lanes, LANES)) * scale;
            out[j + 2] = tail(q, qOffset, keys, k2, vectorEnd, n, sum(lanes, 2 * LANES)) * scale;
            out[j + 3] = tail(q, qOffset, keys, k3, vectorEnd, n, sum(lanes, 3 * LANES)) * scale;
        }
        for (; j <= last; j++) {
            out[j] = dot(q, qOffset, keys, base + j * n, n) * scale;
        }
    }

    /** {@link #scores} over keys held as BF16 bits (a BF16 KV cache): the same sums over the widened keys. */
    public static void scores(float[] q, int qOffset, short[] keys, int base, int n, int first, int last,
                              float scale, float[] out) {
        if (first <= last) {
            Objects.checkFromIndexSize(qOffset, n, q.length);
            Objects.checkFromToIndex(base + first * n, base + (last + 1) * n, keys.length);
            Objects.checkFromToIndex(first, last + 1, out.length);
        }
        int vectorEnd = n - n % LANES;
        float[] lanes = new float[8 * LANES];
        int j = first;
        // Eight keys at a time while there are eight: eight sums in flight keep both multiply-add units busy.
        for (; j + 7 <= last; j += 8) {
            int k0 = base + j * n;
            int k1 = k0 + n;
            int k2 = k1 + n;
            int k3 = k2 + n;
            int k4 = k3 + n;
            int k5 = k4 + n;
            int k6 = k5 + n;
            int k7 = k6 + n;
            FloatVector a0 = FloatVector.zero(F);
            FloatVector a1 = FloatVector.zero(F);
            FloatVector a2 = FloatVector.zero(F);
            FloatVector a3 = FloatVector.zero(F);
            FloatVector a4 = FloatVector.zero(F);
            FloatVector a5 = FloatVector.zero(F);
            FloatVector a6 = FloatVector.zero(F);
            FloatVector a7 = FloatVector.zero(F);
            for (int d = 0; d < vectorEnd; d += LANES) {
                FloatVector qv = FloatVector.fromArray(F, q, qOffset + d);
                a0 = qv.fma(widen(keys, k0 + d), a0);
                a1 = qv.fma(widen(keys, k1 + d), a1);
                a2 = qv.fma(widen(keys, k2 + d), a2);
                a3 = qv.fma(widen(keys, k3 + d), a3);
                a4 = qv.fma(widen(keys, k4 + d), a4);
                a5 = qv.fma(widen(keys, k5 + d), a5);
                a6 = qv.fma(widen(keys, k6 + d), a6);
                a7 = qv.fma(widen(keys, k7 + d), a7);
            }
            a0.intoArray(lanes, 0);
            a1.intoArray(lanes, LANES);
            a2.intoArray(lanes, 2 * LANES);
            a3.intoArray(lanes, 3 * LANES);
            a4.intoArray(lanes, 4 * LANES);
            a5.intoArray(lanes, 5 * LANES);
            a6.intoArray(lanes, 6 * LANES);
            a7.intoArray(lanes, 7 * LANES);
            out[j] = tail(q, qOffset, keys, k0, vectorEnd, n, sum(lanes, 0)) * scale;
            out[j + 1] = tail(q, qOffset, keys, k1, vectorEnd, n, sum(lanes, LANES)) * scale;
            out[j + 2] = tail(q, qOffset, keys, k2, vectorEnd, n, sum(lanes, 2 * LANES)) * scale;
            out[j + 3] = tail(q, qOffset, keys, k3, vectorEnd, n, sum(lanes, 3 * LANES)) * scale;
            out[j + 4] = tail(q, qOffset, keys, k4, vectorEnd, n, sum(lanes, 4 * LANES)) * scale;
            out[j + 5] = tail(q, qOffset, keys, k5, vectorEnd, n, sum(lanes, 5 * LANES)) * scale;
            out[j + 6] = tail(q, qOffset, keys, k6, vectorEnd, n, sum(lanes, 6 * LANES)) * scale;
            out[j + 7] = tail(q, qOffset, keys, k7, vectorEnd, n, sum(lanes, 7 * LANES)) * scale;
        }
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
                a0 = qv.fma(widen(keys, k0 + d), a0);
                a1 = qv.fma(widen(keys, k1 + d), a1);
                a2 = qv.fma(widen(keys, k2 + d), a2);
                a3 = qv.fma(widen(keys, k3 + d), a3);
            }
            a0.intoArray(lanes, 0);
            a1.intoArray(lanes, LANES);
            a2.intoArray(lanes, 2 * LANES);
            a3.intoArray(lanes, 3 * LANES);
            out[j] = tail(q, qOffset, keys, k0, vectorEnd, n, sum(lanes, 0)) * scale;
            out[j + 1] = tail(q, qOffset, keys, k1, vectorEnd, n, sum(lanes, LANES)) * scale;
            out[j + 2] = tail(q, qOffset, keys, k2, vectorEnd, n, sum(lanes, 2 * LANES)) * scale;
            out[j + 3] = tail(q, qOffset, keys, k3, vectorEnd, n, sum(lanes, 3 * LANES)) * scale;
        }
        for (; j <= last; j++) {
            int k = base + j * n;
            FloatVector a = FloatVector.zero(F);
            for (int d = 0; d < vectorEnd; d += LANES) {
                a = FloatVector.fromArray(F, q, qOffset + d).fma(widen(keys, k + d), a);
            }
            out[j] = tail(q, qOffset, keys, k, vectorEnd, n, sum(a)) * scale;
        }
    }

    private static float tail(float[] a, int aOffset, short[] b, int bOffset, int from, int n, float sum) {
        for (int k = from; k < n; k++) {
            sum += a[aOffset + k] * Dtypes.bf16ToFloat(b[bOffset + k]);
        }
        return sum;
    }

    /** Eight BF16 values of an array, widened to float32. */
    private static FloatVector widen(short[] bf16, int index) {
        ShortVector bits = ShortVector.fromArray(S, bf16, index);
        return ((IntVector) bits.convertShape(VectorOperators.S2I, I, 0)).lanewise(VectorOperators.LSHL, 16)
                .reinterpretAsFloats();
    }

    private static float tail(float[] a, int aOffset, float[] b, int bOffset, int from, int n, float sum) {
        for (int k = from; k < n; k++) {
            sum += a[aOffset + k] * b[bOffset + k];
        }
        return sum;
    }

    /**
     * Attention output of one head, added to what {@code out} holds: {@code out[d] += sum_j weights[j] * value j [d]}
     * for j in [first, last], the values {@code n} floats apart from {@code base}; 32 outputs at a time stay in
     * registers over all positions. Each output adds its positions' products one fused multiply-add at a time, in
     * position order, onto what it held: so a range summed in consecutive pieces gives the same bits as summed at
     * once, and into zeros the same as from zero.
     */
    public static void addWeightedSum(float[] weights, float[] values, int base, int n, int first, int last,
                                      float[] out, int outOffset) {
        Objects.checkFromIndexSize(outOffset, n, out.length);
        if (first <= last) {
            Objects.checkFromToIndex(base + first * n, base + (last + 1) * n, values.length);
            Objects.checkFromToIndex(first, last + 1, weights.length);
        }
        int d = 0;
        // Eight independent sums in flight where the head is 64 wide: four leave the multiply-adds waiting on latency.
        for (; d + 8 * LANES <= n; d += 8 * LANES) {
            FloatVector a0 = FloatVector.fromArray(F, out, outOffset + d);
            FloatVector a1 = FloatVector.fromArray(F, out, outOffset + d + LANES);
            FloatVector a2 = FloatVector.fromArray(F, out, outOffset + d + 2 * LANES);
            FloatVector a3 = FloatVector.fromArray(F, out, outOffset + d + 3 * LANES);
            FloatVector a4 = FloatVector.fromArray(F, out, outOffset + d + 4 * LANES);
            FloatVector a5 = FloatVector.fromArray(F, out, outOffset + d + 5 * LANES);
            FloatVector a6 = FloatVector.fromArray(F, out, outOffset + d + 6 * LANES);
            FloatVector a7 = FloatVector.fromArray(F, out, outOffset + d + 7 * LANES);
            for (int j = first; j <= last; j++) {
                FloatVector w = FloatVector.broadcast(F, weights[j]);
                int v = base + j * n + d;
                a0 = FloatVector.fromArray(F, values, v).fma(w, a0);
                a1 = FloatVector.fromArray(F, values, v + LANES).fma(w, a1);
                a2 = FloatVector.fromArray(F, values, v + 2 * LANES).fma(w, a2);
                a3 = FloatVector.fromArray(F, values, v + 3 * LANES).fma(w, a3);
                a4 = FloatVector.fromArray(F, values, v + 4 * LANES).fma(w, a4);
                a5 = FloatVector.fromArray(F, values, v + 5 * LANES).fma(w, a5);
                a6 = FloatVector.fromArray(F, values, v + 6 * LANES).fma(w, a6);
                a7 = FloatVector.fromArray(F, values, v + 7 * LANES).fma(w, a7);
            }
            a0.intoArray(out, outOffset + d);
            a1.intoArray(out, outOffset + d + LANES);
            a2.intoArray(out, outOffset + d + 2 * LANES);
            a3.intoArray(out, outOffset + d + 3 * LANES);
            a4.intoArray(out, outOffset + d + 4 * LANES);
            a5.intoArray(out, outOffset + d + 5 * LANES);
            a6.intoArray(out, outOffset + d + 6 * LANES);
            a7.intoArray(out, outOffset + d + 7 * LANES);
        }
        for (; d + 4 * LANES <= n; d += 4 * LANES) {
            FloatVector a0 = FloatVector.fromArray(F, out, outOffset + d);
            FloatVector a1 = FloatVector.fromArray(F, out, outOffset + d + LANES);
            FloatVector a2 = FloatVector.fromArray(F, out, outOffset + d + 2 * LANES);
            FloatVector a3 = FloatVector.fromArray(F, out, outOffset + d + 3 * LANES);
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
            FloatVector a = FloatVector.fromArray(F, out, outOffset + d);
            for (int j = first; j <= last; j++) {
                a = FloatVector.fromArray(F, values, base + j * n + d).fma(FloatVector.broadcast(F, weights[j]), a);
            }
            a.intoArray(out, outOffset + d);
        }
        for (; d < n; d++) {
            float a = out[outOffset + d];
            for (int j = first; j <= last; j++) {
                a += weights[j] * values[base + j * n + d];
            }
            out[outOffset + d] = a;
        }
    }

    /** {@link #addWeightedSum} over values held as BF16 bits (a BF16 KV cache). */
    public static void addWeightedSum(float[] weights, short[] values, int base, int n, int first, int last,
                                      float[] out, int outOffset) {
        Objects.checkFromIndexSize(outOffset, n, out.length);
        if (first <= last) {
            Objects.checkFromToIndex(base + first * n, base + (last + 1) * n, values.length);
            Objects.checkFromToIndex(first, last + 1, weights.length);
        }
        int d = 0;
        // Eight independent sums in flight where the head is 64 wide: four leave the multiply-adds waiting on latency.
        for (; d + 8 * LANES <= n; d += 8 * LANES) {
            FloatVector a0 = FloatVector.fromArray(F, out, outOffset + d);
            FloatVector a1 = FloatVector.fromArray(F, out, outOffset + d + LANES);
            FloatVector a2 = FloatVector.fromArray(F, out, outOffset + d + 2 * LANES);
            FloatVector a3 = FloatVector.fromArray(F, out, outOffset + d + 3 * LANES);
            FloatVector a4 = FloatVector.fromArray(F, out, outOffset + d + 4 * LANES);
            FloatVector a5 = FloatVector.fromArray(F, out, outOffset + d + 5 * LANES);
            FloatVector a6 = FloatVector.fromArray(F, out, outOffset + d + 6 * LANES);
            FloatVector a7 = FloatVector.fromArray(F, out, outOffset + d + 7 * LANES);
            for (int j = first; j <= last; j++) {
                FloatVector w = FloatVector.broadcast(F, weights[j]);
                int v = base + j * n + d;
                a0 = widen(values, v).fma(w, a0);
                a1 = widen(values, v + LANES).fma(w, a1);
                a2 = widen(values, v + 2 * LANES).fma(w, a2);
                a3 = widen(values, v + 3 * LANES).fma(w, a3);
                a4 = widen(values, v + 4 * LANES).fma(w, a4);
                a5 = widen(values, v + 5 * LANES).fma(w, a5);
                a6 = widen(values, v + 6 * LANES).fma(w, a6);
                a7 = widen(values, v + 7 * LANES).fma(w, a7);
            }
            a0.intoArray(out, outOffset + d);
            a1.intoArray(out, outOffset + d + LANES);
            a2.intoArray(out, outOffset + d + 2 * LANES);
            a3.intoArray(out, outOffset + d + 3 * LANES);
            a4.intoArray(out, outOffset + d + 4 * LANES);
            a5.intoArray(out, outOffset + d + 5 * LANES);
            a6.intoArray(out, outOffset + d + 6 * LANES);
            a7.intoArray(out, outOffset + d + 7 * LANES);
        }
        for (; d + 4 * LANES <= n; d += 4 * LANES) {
            FloatVector a0 = FloatVector.fromArray(F, out, outOffset + d);
            FloatVector a1 = FloatVector.fromArray(F, out, outOffset + d + LANES);
            FloatVector a2 = FloatVector.fromArray(F, out, outOffset + d + 2 * LANES);
            FloatVector a3 = FloatVector.fromArray(F, out, outOffset + d + 3 * LANES);
            for (int j = first; j <= last; j++) {
                FloatVector w = FloatVector.broadcast(F, weights[j]);
                int v = base + j * n + d;
                a0 = widen(values, v).fma(w, a0);
                a1 = widen(values, v + LANES).fma(w, a1);
                a2 = widen(values, v + 2 * LANES).fma(w, a2);
                a3 = widen(values, v + 3 * LANES).fma(w, a3);
            }
            a0.intoArray(out, outOffset + d);
            a1.intoArray(out, outOffset + d + LANES);
            a2.intoArray(out, outOffset + d + 2 * LANES);
            a3.intoArray(out, outOffset + d + 3 * LANES);
        }
        for (; d + LANES <= n; d += LANES) {
            FloatVector a = FloatVector.fromArray(F, out, outOffset + d);
            for (int j = first; j <= last; j++) {
                a = widen(values, base + j * n + d).fma(FloatVector.broadcast(F, weights[j]), a);
            }
            a.intoArray(out, outOffset + d);
        }
        for (; d < n; d++) {
            float a = out[outOffset + d];
            for (int j = first; j <= last; j++) {
                a += weights[j] * Dtypes.bf16ToFloat(values[base + j * n + d]);
            }
            out[outOffset + d] = a;
        }
    }

    // exp(x) for float32, vectorized: x = n ln2 + r with |r| <= ln2/2, exp(r) by Cephes' degree-6 polynomial, times
    // 2^n built in the exponent bits; within 2 ulp of the correctly rounded result (ExpTest). Every step is one
    // IEEE-exact operation (fma, mul, add, min, max, bit moves), so the vector lanes and the scalar tail give the same
    // bits, interpreted or compiled: unlike the Vector API's own EXP, whose compiled and fallback forms differ, and
    // which would make a row's values depend on the JIT state and on where the row falls in a vector.
    private static final float EXP_LO = -87.33f;    // below: 2^n would be subnormal; exp is < 1.2e-38 there
    private static final float EXP_HI = 88f;        // above: 2^n would overflow before the multiply
    private static final float LOG2E = 1.44269504088896341f;
    private static final float ROUND = 12582912f;   // 1.5 * 2^23: adding it rounds a float to an integer
    private static final int ROUND_BITS = Float.floatToRawIntBits(ROUND);
    private static final float LN2_HI = 0.693359375f;
    private static final float LN2_LO = -2.12194440e-4f;
    private static final float[] EXP_POLY = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f,
        4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f};

    /** exp(x) in float32, bit for bit what the vector form gives in any lane. */
    static float exp(float x) {
        x = Math.min(Math.max(x, EXP_LO), EXP_HI);
        float t = Math.fma(x, LOG2E, ROUND);
        float n = t - ROUND;
        float r = Math.fma(n, -LN2_HI, x);
        r = Math.fma(n, -LN2_LO, r);
        float p = EXP_POLY[0];
        for (int i = 1; i < EXP_POLY.length; i++) {
            p = Math.fma(p, r, EXP_POLY[i]);
        }
        float y = Math.fma(p, r * r, r) + 1f;
        return y * Float.intBitsToFloat((Float.floatToRawIntBits(t) - ROUND_BITS + 127) << 23);
    }

    private static FloatVector exp(FloatVector x) {
        x = x.max(EXP_LO).min(EXP_HI);
        FloatVector t = x.fma(LOG2E, ROUND);
        FloatVector n = t.sub(ROUND);
        FloatVector r = n.fma(FloatVector.broadcast(F, -LN2_HI), x);
        r = n.fma(FloatVector.broadcast(F, -LN2_LO), r);
        FloatVector p = FloatVector.broadcast(F, EXP_POLY[0]);
        for (int i = 1; i < EXP_POLY.length; i++) {
            p = p.fma(r, FloatVector.broadcast(F, EXP_POLY[i]));
        }
        FloatVector y = p.fma(r.mul(r), r).add(1f);
        IntVector bits = t.reinterpretAsInts().sub(ROUND_BITS - 127).lanewise(VectorOperators.LSHL, 23);
        return y.mul(bits.reinterpretAsFloats());
    }

    /**
     * The softmax numerators in place: {@code v[j] = exp(v[j] - max)} for j in [from, to]; returns their sum, added
     * in index order (the order the scalar loop had).
     */
    public static float expShifted(float[] v, int from, int to, float max) {
        Objects.checkFromToIndex(from, Math.max(from, to + 1), v.length);
        int j = from;
        for (; j + LANES <= to + 1; j += LANES) {
            exp(FloatVector.fromArray(F, v, j).sub(max)).intoArray(v, j);
        }
        for (; j <= to; j++) {
            v[j] = exp(v[j] - max);
        }
        float sum = 0f;
        for (int i = from; i <= to; i++) {
            sum += v[i];
        }
        return sum;
    }

    /**
     * SwiGLU's gate: {@code out[j] = silu(gateUp[j]) * gateUp[inter + j]} for j in [from, to), silu(g) = g / (1 +
     * exp(-g)), as transformers' LlamaMLP does in float32.
     */
    public static void siluGate(float[] gateUp, int inter, float[] out, int from, int to) {
        Objects.checkFromToIndex(from, to, inter);
        Objects.checkFromIndexSize(0, 2 * inter, gateUp.length);
        Objects.checkFromIndexSize(0, inter, out.length);
        int j = from;
        for (; j + LANES <= to; j += LANES) {
            FloatVector g = FloatVector.fromArray(F, gateUp, j);
            g.div(exp(g.neg()).add(1f)).mul(FloatVector.fromArray(F, gateUp, inter + j)).intoArray(out, j);
        }
        for (; j < to; j++) {
            float g = gateUp[j];
            out[j] = g / (1f + exp(-g)) * gateUp[inter + j];
        }
    }

    /** Dot product of two float arrays over [0, n) starting at the given offsets. */
    public static float dot(float[] a, int aOffset, float[] b, int bOffset, int n) {
        Objects.checkFromIndexSize(aOffset, n, a.length);
        Objects.checkFromIndexSize(bOffset, n, b.length);
        FloatVector acc = FloatVector.zero(F);
        int k = 0;
        for (; k + LANES <= n; k += LANES) {
            acc = FloatVector.fromArray(F, a, aOffset + k).fma(FloatVector.fromArray(F, b, bOffset + k), acc);
        }
        float sum = sum(acc);
        for (; k < n; k++) {
            sum += a[aOffset + k] * b[bOffset + k];
        }
        return sum;
    }
}

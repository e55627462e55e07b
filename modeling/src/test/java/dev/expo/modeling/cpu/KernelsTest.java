package dev.expo.modeling.cpu;

import dev.expo.checkpoint.DType;
import dev.expo.checkpoint.Dtypes;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * The decode kernels against plain loops, their batch invariance (a row's result does not depend on what else is in
 * the batch: the serving path relies on it), and the range checks on entry that the inference service relies on
 * when it runs with the Vector API's own per-load checks off.
 */
class KernelsTest {

    private static Matrix matrix(Arena arena, DType dtype, int rows, int cols, Random random) {
        MemorySegment data = arena.allocate((long) rows * cols * dtype.byteSize(), 64);
        for (long i = 0; i < (long) rows * cols; i++) {
            float value = (float) random.nextGaussian();
            if (dtype == DType.BF16) {
                data.setAtIndex(Matrix.SHORT, i, (short) (Float.floatToIntBits(value) >>> 16));
            } else {
                data.setAtIndex(Matrix.FLOAT, i, value);
            }
        }
        return new Matrix(data, dtype, rows, cols);
    }

    private static float[][] inputs(int batch, int cols, Random random) {
        float[][] x = new float[batch][cols];
        for (float[] row : x) {
            for (int k = 0; k < cols; k++) {
                row[k] = (float) random.nextGaussian();
            }
        }
        return x;
    }

    @Test
    void matmulMatchesPlainLoopsAndEveryBatchGivesEachRowTheSameBits() {
        Random random = new Random(7);
        try (Arena arena = Arena.ofShared()) {
            for (DType dtype : new DType[] {DType.BF16, DType.F32}) {
                for (int[] shape : new int[][] {{3, 8}, {37, 24}, {300, 2056}, {1100, 64}, {5, 3}, {37, 13}, {300, 2061}}) {
                    Matrix w = matrix(arena, dtype, shape[0], shape[1], random);
                    float[][] x = inputs(19, shape[1], random);
                    float[][] all = new float[19][shape[0]];
                    Kernels.matmul(w, x, all, 19);
                    float[] row = new float[shape[1]];
                    for (int b = 0; b < 19; b++) {
                        for (int j = 0; j < shape[0]; j++) {
                            w.row(j, row);
                            double expected = 0;
                            for (int k = 0; k < shape[1]; k++) {
                                expected += (double) row[k] * x[b][k];
                            }
                            assertEquals(expected, all[b][j], 1e-4 * Math.sqrt(shape[1]) * 4, dtype + " " + b + "," + j);
                        }
                    }
                    for (int batch : new int[] {1, 4, 7, 8, 9, 16}) {
                        float[][] part = new float[batch][shape[0]];
                        Kernels.matmul(w, x, part, batch);
                        for (int b = 0; b < batch; b++) {
                            assertArrayEquals(all[b], part[b], dtype + " row " + b + " in a batch of " + batch);
                        }
                    }
                }
            }
        }
    }

    @Test
    void entryChecksRejectRangesTheLoopsWouldLeave() {
        Random random = new Random(3);
        try (Arena arena = Arena.ofShared()) {
            Matrix w = matrix(arena, DType.BF16, 64, 32, random);
            assertThrows(IndexOutOfBoundsException.class,
                    () -> Kernels.matmul(w, new float[][] {new float[24]}, new float[1][64], 1));
            assertThrows(IndexOutOfBoundsException.class,
                    () -> Kernels.matmul(w, inputs(2, 32, random), new float[2][63], 2));
            assertThrows(IndexOutOfBoundsException.class,
                    () -> Kernels.matmul(w, inputs(2, 32, random), new float[3][64], 3));
            Matrix truncated = new Matrix(w.data().asSlice(0, 64 * 32 * 2 - 2), DType.BF16, 64, 32);
            assertThrows(IllegalArgumentException.class,
                    () -> Kernels.matmul(truncated, inputs(1, 32, random), new float[1][64], 1));
        }
        float[] q = new float[64];
        float[] keys = new float[64 * 10];
        float[] scores = new float[10];
        Kernels.scores(q, 0, keys, 0, 64, 0, 9, 1f, scores);
        assertThrows(IndexOutOfBoundsException.class, () -> Kernels.scores(q, 8, keys, 0, 64, 0, 9, 1f, scores));
        assertThrows(IndexOutOfBoundsException.class, () -> Kernels.scores(q, 0, keys, 64, 64, 0, 9, 1f, scores));
        assertThrows(IndexOutOfBoundsException.class,
                () -> Kernels.scores(q, 0, keys, 0, 64, 0, 9, 1f, new float[9]));
        float[] out = new float[64];
        Kernels.addWeightedSum(scores, keys, 0, 64, 0, 9, out, 0);
        assertThrows(IndexOutOfBoundsException.class, () -> Kernels.addWeightedSum(scores, keys, 0, 64, 0, 9, out, 1));
        assertThrows(IndexOutOfBoundsException.class,
                () -> Kernels.addWeightedSum(scores, keys, 0, 64, 0, 10, out, 0));
        assertThrows(IndexOutOfBoundsException.class, () -> Kernels.dot(q, 1, q, 0, 64));
    }

    /**
     * What the CPU decoder's tiled attention relies on: a score is the same whichever range it is computed in (eight,
     * four or one key at a time), and a weighted sum added up in consecutive pieces is the sum at once.
     */
    @Test
    void attentionInPiecesIsAttentionAtOnceBitForBit() {
        Random random = new Random(17);
        for (int n : new int[] {64, 40, 12, 128}) {
            int positions = 45;
            float[] keys = inputs(1, n * positions + 3, random)[0];
            float[] q = inputs(1, n + 1, random)[0];
            float[] whole = new float[positions];
            Kernels.scores(q, 1, keys, 3, n, 0, positions - 1, 0.125f, whole);
            for (int j = 0; j < positions; j++) {
                assertEquals(Float.floatToRawIntBits(Kernels.dot(q, 1, keys, 3 + j * n, n) * 0.125f),
                        Float.floatToRawIntBits(whole[j]), "score " + j + ", n=" + n);
            }
            for (int piece : new int[] {1, 3, 7, 32}) {
                float[] scores = new float[positions];
                float[] sum = new float[n + 2];
                float[] sumWhole = new float[n + 2];
                Kernels.addWeightedSum(whole, keys, 3, n, 0, positions - 1, sumWhole, 1);
                for (int first = 0; first < positions; first += piece) {
                    int last = Math.min(positions - 1, first + piece - 1);
                    Kernels.scores(q, 1, keys, 3, n, first, last, 0.125f, scores);
                    Kernels.addWeightedSum(whole, keys, 3, n, first, last, sum, 1);
                }
                assertArrayEquals(whole, scores, "scores in pieces of " + piece + ", n=" + n);
                assertArrayEquals(sumWhole, sum, "weighted sum in pieces of " + piece + ", n=" + n);
            }
        }
    }

    @Test
    void attentionOverABf16CacheIsAttentionOverItsWidenedValuesBitForBit() {
        Random random = new Random(13);
        for (int n : new int[] {64, 12, 40}) {
            int positions = 23;
            short[] bf16 = new short[n * positions + 5];
            float[] widened = new float[bf16.length];
            for (int i = 0; i < bf16.length; i++) {
                bf16[i] = Dtypes.floatToBf16((float) random.nextGaussian());
                widened[i] = Dtypes.bf16ToFloat(bf16[i]);
            }
            float[] q = inputs(1, n + 3, random)[0];
            for (int[] range : new int[][] {{0, 22}, {3, 9}, {5, 5}, {0, 2}}) {
                float[] expected = new float[positions];
                float[] actual = new float[positions];
                Kernels.scores(q, 3, widened, 5, n, range[0], range[1], 0.125f, expected);
                Kernels.scores(q, 3, bf16, 5, n, range[0], range[1], 0.125f, actual);
                assertArrayEquals(expected, actual, "scores n=" + n);
                float[] sums = new float[n + 2];
                float[] bf16Sums = new float[n + 2];
                Kernels.addWeightedSum(expected, widened, 5, n, range[0], range[1], sums, 2);
                Kernels.addWeightedSum(expected, bf16, 5, n, range[0], range[1], bf16Sums, 2);
                assertArrayEquals(sums, bf16Sums, "weighted sums n=" + n);
            }
        }
        short[] keys = new short[64 * 10];
        float[] scores = new float[10];
        assertThrows(IndexOutOfBoundsException.class,
                () -> Kernels.scores(new float[64], 0, keys, 64, 64, 0, 9, 1f, scores));
        assertThrows(IndexOutOfBoundsException.class,
                () -> Kernels.addWeightedSum(scores, keys, 0, 64, 0, 10, new float[64], 0));
    }
}

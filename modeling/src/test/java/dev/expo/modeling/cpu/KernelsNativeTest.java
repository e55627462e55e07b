package dev.expo.modeling.cpu;

import dev.expo.checkpoint.DType;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The compiled BF16 kernels give exactly the Java kernels' bits, for every tile shape and remainder they take: widths
 * with and without a partial last vector, weight rows that are not whole tiles, decode batches (eight inputs or fewer)
 * and prompt batches across the blocks the inputs are packed in.
 */
class KernelsNativeTest {

    @Test
    void nativeKernelsGiveTheJavaKernelsBitsForAnyShape() {
        assumeTrue(NativeKernels.class.getResource("linux-x86_64/libexpo_kernels.so") != null,
                "skipped: this build has no native kernels (gcc was not found when the module was built)");
        assertTrue(MatrixKernels.nativeAvailable(), MatrixKernels.NATIVE.description());
        Random random = new Random(11);
        int[][] shapes = {{1, 8}, {7, 16}, {13, 5}, {37, 24}, {100, 771}, {301, 768}, {52, 2048}, {26, 2061},
            {1200, 64}, {4, 3}};
        int[] batches = {1, 2, 3, 4, 5, 7, 8, 9, 12, 13, 16, 31, 64, 65, 130};
        try (Arena arena = Arena.ofShared()) {
            for (int[] shape : shapes) {
                int rows = shape[0];
                int cols = shape[1];
                MemorySegment data = arena.allocate((long) rows * cols * 2, 64);
                for (long i = 0; i < (long) rows * cols; i++) {
                    data.setAtIndex(Matrix.SHORT, i,
                            (short) (Float.floatToIntBits((float) random.nextGaussian()) >>> 16));
                }
                Matrix w = new Matrix(data, DType.BF16, rows, cols);
                for (int batch : batches) {
                    float[][] x = new float[batch][cols];
                    for (float[] row : x) {
                        for (int k = 0; k < cols; k++) {
                            row[k] = (float) random.nextGaussian();
                        }
                    }
                    float[][] java = new float[batch][rows];
                    float[][] compiled = new float[batch][rows];
                    MatrixKernels.JAVA.matmul(w, x, java, batch);
                    MatrixKernels.NATIVE.matmul(w, x, compiled, batch);
                    for (int b = 0; b < batch; b++) {
                        assertArrayEquals(java[b], compiled[b],
                                rows + "x" + cols + " weights, row " + b + " of a batch of " + batch);
                    }
                }
            }
        }
    }
}

package dev.expo.extrapolation.engine.kernel;

import dev.expo.checkpoint.DType;

import java.lang.foreign.MemorySegment;

/**
 * The arithmetic of ExPO on one run of elements, bit-identical to PyTorch evaluating, in float32 with no fused
 * multiply-add, {@code d = aligned - base; s = alpha * d; theta = aligned + s} and then {@code theta.to(dtype)}
 * (round to nearest even; NaN to the canonical NaN). Alpha is a float32, as PyTorch turns a Python scalar into the
 * tensor's dtype.
 */
public interface ExtrapolationKernel {

    /**
     * Writes {@code count} output elements to {@code out} and adds the non-finite outputs to {@code nonFinite}.
     * Segments hold little-endian elements starting at offset 0.
     */
    void extrapolate(MemorySegment aligned, MemorySegment base, DType inType, MemorySegment out, DType outType,
                     int count, float alpha, NonFiniteCount nonFinite);

    /**
     * Runs the kernel until the JIT has compiled it, on the same kinds of memory a job uses (read-only slices of a
     * mapped file in, native memory out): compiled for other kinds, the code would be thrown away and interpreted
     * again at the first job. Interpreted, the Vector API is a thousand times slower and allocates on every
     * operation, so a long-running service calls this once at start-up rather than letting the first job pay.
     */
    static void warmUp(ExtrapolationKernel kernel) {
        int n = 1 << 14;
        java.nio.file.Path file = null;
        try (java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofConfined()) {
            file = java.nio.file.Files.createTempFile("expo-kernel-warm-up", ".bin");
            MemorySegment inputs;
            try (java.nio.channels.FileChannel channel = java.nio.channels.FileChannel.open(file,
                    java.nio.file.StandardOpenOption.READ, java.nio.file.StandardOpenOption.WRITE)) {
                channel.write(java.nio.ByteBuffer.allocate(8 * n), 0);
                inputs = channel.map(java.nio.channels.FileChannel.MapMode.READ_ONLY, 0, 8L * n, arena);
            }
            MemorySegment aligned = inputs.asSlice(0, 4L * n).asReadOnly();
            MemorySegment base = inputs.asSlice(4L * n, 4L * n).asReadOnly();
            MemorySegment out = arena.allocate(4L * n);
            for (int round = 0; round < 400; round++) {
                kernel.extrapolate(aligned, base, DType.BF16, out.asSlice(0, 2L * n), DType.BF16, n, 12f,
                        new NonFiniteCount());
                kernel.extrapolate(aligned, base, DType.F32, out, DType.F32, n, 12f, new NonFiniteCount());
            }
        } catch (java.io.IOException e) {
            // No temp file: the first job warms the kernel up instead.
        } finally {
            if (file != null) {
                try {
                    java.nio.file.Files.deleteIfExists(file);
                } catch (java.io.IOException ignored) {
                    // A 128 KiB file in the temp folder.
                }
            }
        }
    }

    /** The best kernel this JVM can run: the vectorized one when jdk.incubator.vector is present. */
    static ExtrapolationKernel best() {
        boolean vectorApi = ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent();
        return vectorApi ? VectorKernel.create() : new ScalarKernel();
    }
}

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

    /** The best kernel this JVM can run: the vectorized one when jdk.incubator.vector is present. */
    static ExtrapolationKernel best() {
        boolean vectorApi = ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent();
        return vectorApi ? VectorKernel.create() : new ScalarKernel();
    }
}

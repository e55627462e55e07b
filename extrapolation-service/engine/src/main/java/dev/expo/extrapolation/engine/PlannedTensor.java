package dev.expo.extrapolation.engine;

import dev.expo.checkpoint.DType;
import dev.expo.checkpoint.TensorInfo;

/**
 * One output tensor: its alpha, what chose it, and its decoder layer (-1 outside the layers).
 * Alpha 0 copies the aligned tensor (the base is not read).
 */
public record PlannedTensor(TensorInfo aligned, DType outputDtype, double alpha, String source, int layer) {

    public String name() {
        return aligned.name();
    }

    public long elementCount() {
        return aligned.elementCount();
    }

    public boolean copiesAligned() {
        return alpha == 0.0;
    }

    /** Bytes read from the two inputs to produce this tensor. */
    public long inputBytes() {
        return aligned.byteSize() * (copiesAligned() ? 1 : 2);
    }

    public long outputBytes() {
        return elementCount() * outputDtype.byteSize();
    }
}

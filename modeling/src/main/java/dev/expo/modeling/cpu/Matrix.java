package dev.expo.modeling.cpu;

import dev.expo.checkpoint.DType;
import dev.expo.checkpoint.Dtypes;
import dev.expo.checkpoint.Tensor;

import java.lang.foreign.SegmentAllocator;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * A weight matrix [rows, cols] off the heap, in BF16 when the checkpoint is BF16 (half the bytes to stream per
 * token, the values exactly those of the float32 upcast) and float32 otherwise.
 */
public record Matrix(MemorySegment data, DType dtype, int rows, int cols) {

    static final ValueLayout.OfShort SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfFloat FLOAT = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** Copies tensors stacked along the rows (q, k, v; gate, up) into one matrix, in memory from {@code memory}. */
    public static Matrix stack(SegmentAllocator memory, Tensor... parts) {
        DType dtype = parts[0].dtype() == DType.BF16 ? DType.BF16 : DType.F32;
        int cols = (int) parts[0].shape()[1];
        int rows = 0;
        for (Tensor part : parts) {
            if (part.shape().length != 2 || part.shape()[1] != cols || part.dtype() != parts[0].dtype()) {
                throw new IllegalArgumentException("cannot stack " + part.name());
            }
            rows += (int) part.shape()[0];
        }
        MemorySegment data = memory.allocate((long) rows * cols * dtype.byteSize(), 64);
        long offset = 0;
        for (Tensor part : parts) {
            if (dtype == part.dtype()) {
                MemorySegment.copy(part.bytes(), 0, data, offset, part.bytes().byteSize());
                offset += part.bytes().byteSize();
            } else {
                float[] values = part.toFloats();
                MemorySegment.copy(values, 0, data, FLOAT, offset, values.length);
                offset += (long) values.length * 4;
            }
        }
        return new Matrix(data, dtype, rows, cols);
    }

    /** The element at a flat index (row * cols + col), widened to float32. */
    public float value(long index) {
        return dtype == DType.BF16 ? Dtypes.bf16ToFloat(data.getAtIndex(SHORT, index)) : data.getAtIndex(FLOAT, index);
    }

    /** One row widened to float32. */
    public void row(int row, float[] out) {
        long base = (long) row * cols;
        if (dtype == DType.BF16) {
            for (int c = 0; c < cols; c++) {
                out[c] = Dtypes.bf16ToFloat(data.getAtIndex(SHORT, base + c));
            }
        } else {
            MemorySegment.copy(data, FLOAT, base * 4, out, 0, cols);
        }
    }
}

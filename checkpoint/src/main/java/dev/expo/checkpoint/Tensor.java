package dev.expo.checkpoint;

import dev.expo.common.ExpoException;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * A tensor's header entry and its raw little-endian bytes (a view of a mapped file or of a heap array). Readers
 * convert any of BF16, F16, F32 exactly to float32.
 */
public record Tensor(TensorInfo info, MemorySegment bytes) {

    static final ValueLayout.OfShort SHORT_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfFloat FLOAT_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfLong LONG_LE = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfInt INT_LE = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    public String name() {
        return info.name();
    }

    public DType dtype() {
        return info.dtype();
    }

    public long[] shape() {
        return info.shape();
    }

    /** All elements as float32 (exact for BF16, F16 and F32). */
    public float[] toFloats() {
        long count = info.elementCount();
        if (count > Integer.MAX_VALUE - 8) {
            throw new IllegalStateException("tensor " + name() + " has too many elements for one array: " + count);
        }
        float[] out = new float[(int) count];
        readFloats(0, out, 0, out.length);
        return out;
    }

    /** Converts {@code count} elements starting at element {@code from} into {@code out[offset..]}. */
    public void readFloats(long from, float[] out, int offset, int count) {
        switch (info.dtype()) {
            case BF16 -> {
                for (int i = 0; i < count; i++) {
                    out[offset + i] = Dtypes.bf16ToFloat(bytes.get(SHORT_LE, (from + i) * 2));
                }
            }
            case F16 -> {
                for (int i = 0; i < count; i++) {
                    out[offset + i] = Float.float16ToFloat(bytes.get(SHORT_LE, (from + i) * 2));
                }
            }
            case F32 -> MemorySegment.copy(bytes, FLOAT_LE, from * 4, out, offset, count);
            default -> throw ExpoException.invalidArgument("tensor " + name() + " has dtype " + info.dtype()
                    + ", where a floating-point tensor (F32, F16, BF16) is needed");
        }
    }

    /** All elements of an integer tensor (I64, I32, U8, BOOL) as longs. */
    public long[] toLongs() {
        int count = Math.toIntExact(info.elementCount());
        long[] out = new long[count];
        for (int i = 0; i < count; i++) {
            out[i] = switch (info.dtype()) {
                case I64, U64 -> bytes.get(LONG_LE, (long) i * 8);
                case I32 -> bytes.get(INT_LE, (long) i * 4);
                case U32 -> Integer.toUnsignedLong(bytes.get(INT_LE, (long) i * 4));
                case U8, BOOL -> Byte.toUnsignedInt(bytes.get(ValueLayout.JAVA_BYTE, i));
                case I8 -> bytes.get(ValueLayout.JAVA_BYTE, i);
                default -> throw ExpoException.invalidArgument("tensor " + name() + " has dtype " + info.dtype()
                        + ", where an integer tensor is needed");
            };
        }
        return out;
    }

    /** A heap tensor from float32 values, rounded to {@code dtype} as PyTorch's {@code .to(dtype)} does. */
    public static Tensor fromFloats(String name, DType dtype, long[] shape, float[] values) {
        if (TensorInfo.elementCount(shape) != values.length) {
            throw new IllegalArgumentException(name + ": " + values.length + " values for shape "
                    + java.util.Arrays.toString(shape));
        }
        MemorySegment bytes = MemorySegment.ofArray(new byte[Math.multiplyExact(values.length, dtype.byteSize())]);
        for (int i = 0; i < values.length; i++) {
            switch (dtype) {
                case BF16 -> bytes.set(SHORT_LE, i * 2L, Dtypes.floatToBf16(values[i]));
                case F16 -> bytes.set(SHORT_LE, i * 2L, Dtypes.floatToF16(values[i]));
                case F32 -> bytes.set(FLOAT_LE, i * 4L, values[i]);
                default -> throw new IllegalArgumentException("not a float dtype: " + dtype);
            }
        }
        return new Tensor(new TensorInfo(name, dtype, shape, 0, bytes.byteSize()), bytes);
    }

    /** A heap I64 tensor. */
    public static Tensor fromLongs(String name, long[] shape, long[] values) {
        MemorySegment bytes = MemorySegment.ofArray(new byte[values.length * 8]);
        for (int i = 0; i < values.length; i++) {
            bytes.set(LONG_LE, i * 8L, values[i]);
        }
        return new Tensor(new TensorInfo(name, DType.I64, shape, 0, bytes.byteSize()), bytes);
    }
}

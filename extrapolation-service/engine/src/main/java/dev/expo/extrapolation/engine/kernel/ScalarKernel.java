package dev.expo.extrapolation.engine.kernel;

import dev.expo.checkpoint.DType;
import dev.expo.checkpoint.Dtypes;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * The reference kernel: one element at a time, any of BF16/F16/F32 in and out. Java float arithmetic is IEEE
 * binary32 with round-to-nearest-even and never fused, so each line below is exactly the PyTorch op it names.
 */
public final class ScalarKernel implements ExtrapolationKernel {

    static final ValueLayout.OfShort SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfFloat FLOAT = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    @Override
    public void extrapolate(MemorySegment aligned, MemorySegment base, DType inType, MemorySegment out,
                            DType outType, int count, float alpha, NonFiniteCount nonFinite) {
        extrapolateRange(aligned, base, inType, out, outType, 0, count, alpha, nonFinite);
    }

    /** Elements [from, to); the vector kernel finishes its tails here. */
    static void extrapolateRange(MemorySegment aligned, MemorySegment base, DType inType, MemorySegment out,
                                 DType outType, int from, int to, float alpha, NonFiniteCount nonFinite) {
        for (int i = from; i < to; i++) {
            float a = read(aligned, inType, i);
            float b = read(base, inType, i);
            float d = a - b;           // d = aligned - base
            float s = alpha * d;       // s = alpha * d
            float theta = a + s;       // theta = aligned + s
            write(out, outType, i, theta, nonFinite);
        }
    }

    /** Alpha 0 with a dtype change: round the aligned values to the output dtype. */
    public static void convert(MemorySegment aligned, DType inType, MemorySegment out, DType outType, int count,
                               NonFiniteCount nonFinite) {
        for (int i = 0; i < count; i++) {
            write(out, outType, i, read(aligned, inType, i), nonFinite);
        }
    }

    static float read(MemorySegment segment, DType type, long index) {
        return switch (type) {
            case BF16 -> Dtypes.bf16ToFloat(segment.getAtIndex(SHORT, index));
            case F16 -> Float.float16ToFloat(segment.getAtIndex(SHORT, index));
            case F32 -> segment.getAtIndex(FLOAT, index);
            default -> throw new IllegalArgumentException("not a float dtype: " + type);
        };
    }

    static void write(MemorySegment segment, DType type, long index, float value, NonFiniteCount nonFinite) {
        switch (type) {
            case BF16 -> {
                short bits = Dtypes.floatToBf16(value);
                segment.setAtIndex(SHORT, index, bits);
                count16(bits, 0x7F80, 0x007F, nonFinite);
            }
            case F16 -> {
                short bits = Dtypes.floatToF16(value);
                segment.setAtIndex(SHORT, index, bits);
                count16(bits, 0x7C00, 0x03FF, nonFinite);
            }
            case F32 -> {
                segment.setAtIndex(FLOAT, index, value);
                if (Float.isNaN(value)) {
                    nonFinite.addNan(1);
                } else if (Float.isInfinite(value)) {
                    nonFinite.addInf(1);
                }
            }
            default -> throw new IllegalArgumentException("not a float dtype: " + type);
        }
    }

    private static void count16(short bits, int exponentMask, int mantissaMask, NonFiniteCount nonFinite) {
        if ((bits & exponentMask) == exponentMask) {
            if ((bits & mantissaMask) != 0) {
                nonFinite.addNan(1);
            } else {
                nonFinite.addInf(1);
            }
        }
    }
}

package dev.expo.checkpoint;

/**
 * Exact conversions between float32 and the 16-bit types, with PyTorch's rounding: round to nearest, ties to even,
 * and NaN to the canonical quiet NaN. (DJL's PyTorch engine has no BF16, so every BF16 byte passes through here.)
 */
public final class Dtypes {

    private Dtypes() {
    }

    /** BF16 is the upper half of a float32: widening is exact. */
    public static float bf16ToFloat(short bits) {
        return Float.intBitsToFloat((bits & 0xFFFF) << 16);
    }

    /** {@code torch.Tensor.to(torch.bfloat16)}: round to nearest even; any NaN becomes 0x7FC0. */
    public static short floatToBf16(float value) {
        int bits = Float.floatToRawIntBits(value);
        if ((bits & 0x7FFFFFFF) > 0x7F800000) {
            return (short) 0x7FC0;
        }
        int roundingBias = 0x7FFF + ((bits >>> 16) & 1);
        return (short) ((bits + roundingBias) >>> 16);
    }

    /** {@code torch.Tensor.to(torch.float16)}: IEEE round to nearest even; any NaN becomes a quiet NaN. */
    public static short floatToF16(float value) {
        if (Float.isNaN(value)) {
            return (short) (((Float.floatToRawIntBits(value) >>> 16) & 0x8000) | 0x7E00);
        }
        return Float.floatToFloat16(value);
    }

    /** Converts one float32 to the bits of {@code dtype} (BF16 and F16 in the low 16 bits; F32 as its bits). */
    public static int encode(float value, DType dtype) {
        return switch (dtype) {
            case BF16 -> floatToBf16(value) & 0xFFFF;
            case F16 -> floatToF16(value) & 0xFFFF;
            case F32 -> Float.floatToRawIntBits(value);
            default -> throw new IllegalArgumentException("not a float dtype: " + dtype);
        };
    }

    public static DType fromTorchName(String torchDtype) {
        if (torchDtype == null) {
            return null;
        }
        return switch (torchDtype) {
            case "bfloat16" -> DType.BF16;
            case "float16", "half" -> DType.F16;
            case "float32", "float" -> DType.F32;
            default -> null;
        };
    }
}

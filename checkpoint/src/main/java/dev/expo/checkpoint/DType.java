package dev.expo.checkpoint;

import dev.expo.common.ExpoException;

import java.util.Arrays;
import java.util.stream.Collectors;

/**
 * The element types a safetensors header may name. The declaration order is the Rust reference's {@code Dtype}
 * order, which its writer sorts by (descending) before the tensor name.
 */
public enum DType {
    BOOL(1), U8(1), I8(1), F8_E5M2(1), F8_E4M3(1), I16(2), U16(2), F16(2), BF16(2), I32(4), U32(4), F32(4),
    F64(8), I64(8), U64(8);

    private final int byteSize;

    DType(int byteSize) {
        this.byteSize = byteSize;
    }

    public int byteSize() {
        return byteSize;
    }

    /** True for the types extrapolation and the model runtime compute with. */
    public boolean isFloatingPoint16or32() {
        return this == BF16 || this == F16 || this == F32;
    }

    /** The {@code torch_dtype} string Hugging Face writes into config.json. */
    public String torchName() {
        return switch (this) {
            case BF16 -> "bfloat16";
            case F16 -> "float16";
            case F32 -> "float32";
            case F64 -> "float64";
            default -> name().toLowerCase();
        };
    }

    public static DType parse(String name, String where) {
        for (DType type : values()) {
            if (type.name().equals(name)) {
                return type;
            }
        }
        throw ExpoException.invalidArgument(where + " has unknown dtype \"" + name + "\"; safetensors dtypes are "
                + Arrays.stream(values()).map(Enum::name).collect(Collectors.joining(", ")));
    }
}

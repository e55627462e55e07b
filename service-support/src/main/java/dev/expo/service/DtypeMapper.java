package dev.expo.service;

import dev.expo.api.v1.TensorDtype;
import dev.expo.checkpoint.DType;
import dev.expo.common.ExpoException;

/** Checkpoint dtypes to and from the wire's {@code TensorDtype}; shared by every service's proto mapper. */
public final class DtypeMapper {

    private DtypeMapper() {
    }

    /** UNSPECIFIED for null (e.g. "keep the input's") and for dtypes the wire does not name. */
    public static TensorDtype toProto(DType dtype) {
        if (dtype == null) {
            return TensorDtype.TENSOR_DTYPE_UNSPECIFIED;
        }
        return switch (dtype) {
            case BF16 -> TensorDtype.TENSOR_DTYPE_BF16;
            case F16 -> TensorDtype.TENSOR_DTYPE_F16;
            case F32 -> TensorDtype.TENSOR_DTYPE_F32;
            default -> TensorDtype.TENSOR_DTYPE_UNSPECIFIED;
        };
    }

    /** Null for UNSPECIFIED. */
    public static DType fromProto(TensorDtype dtype, String field) {
        return switch (dtype) {
            case TENSOR_DTYPE_UNSPECIFIED -> null;
            case TENSOR_DTYPE_BF16 -> DType.BF16;
            case TENSOR_DTYPE_F16 -> DType.F16;
            case TENSOR_DTYPE_F32 -> DType.F32;
            case UNRECOGNIZED -> throw ExpoException.invalidArgument(field, dtype.getNumber(), "unknown dtype");
        };
    }
}

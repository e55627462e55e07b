package dev.expo.modeling;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.expo.checkpoint.Tensor;

/** Checkpoint tensors into DJL arrays, converted in Java: no BF16 array is ever created (DJL would abort). */
public final class NdArrays {

    private NdArrays() {
    }

    /** The tensor widened exactly to float32, then cast to the compute type. */
    public static NDArray load(NDManager manager, Tensor tensor, ModelOptions options) {
        NDArray array = manager.create(tensor.toFloats(), new Shape(tensor.shape()));
        return options.computeType() == DataType.FLOAT32 ? array : array.toType(options.computeType(), false);
    }

    /**
     * A copy of the array in memory libtorch owns (the original is closed). Arrays DJL creates from Java values sit
     * over a Java buffer that is freed once the array is closed and collected; one that autograd keeps for a backward
     * pass past its close must be owned by libtorch.
     */
    public static NDArray owned(NDArray array) {
        NDArray copy = array.duplicate();
        array.close();
        return copy;
    }

    public static NDArray ofFloats(NDManager manager, float[] values, long... shape) {
        return manager.create(values, new Shape(shape));
    }

    /** The array's values as float32 in Java (one copy out of native memory). */
    public static float[] toFloats(NDArray array) {
        return array.getDataType() == DataType.FLOAT32 ? array.toFloatArray()
                : array.toType(DataType.FLOAT32, false).toFloatArray();
    }
}

package dev.expo.modeling;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.types.DataType;

/**
 * Where a model runs and in which precision: FP32 on CPU; FP16 (or FP32) on a GPU when DJL sees one. Checkpoint
 * weights are converted in Java (BF16 and F16 widened exactly to float32) before DJL ever sees them: DJL's PyTorch
 * engine has no BF16.
 */
public record ModelOptions(Device device, DataType computeType) {

    public ModelOptions {
        if (computeType != DataType.FLOAT32 && computeType != DataType.FLOAT16) {
            throw new IllegalArgumentException("compute type must be FLOAT32 or FLOAT16, not " + computeType);
        }
        if (computeType == DataType.FLOAT16 && !device.isGpu()) {
            throw new IllegalArgumentException("FLOAT16 compute needs a GPU; on CPU the runtime computes in FLOAT32");
        }
    }

    public static ModelOptions cpu() {
        return new ModelOptions(Device.cpu(), DataType.FLOAT32);
    }

    /**
     * The configured choice: "cpu", "gpu" (FP16 on the first GPU), "gpu-fp32", or "auto" (a GPU in FP16 when present,
     * else the CPU).
     */
    public static ModelOptions of(String choice) {
        boolean hasGpu = Engine.getInstance().getGpuCount() > 0;
        return switch (choice) {
            case "cpu" -> cpu();
            case "gpu" -> new ModelOptions(Device.gpu(), DataType.FLOAT16);
            case "gpu-fp32" -> new ModelOptions(Device.gpu(), DataType.FLOAT32);
            case "auto" -> hasGpu ? new ModelOptions(Device.gpu(), DataType.FLOAT16) : cpu();
            default -> throw new IllegalArgumentException("device must be cpu, gpu, gpu-fp32 or auto, not " + choice);
        };
    }
}

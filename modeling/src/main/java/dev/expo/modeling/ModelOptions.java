package dev.expo.modeling;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.types.DataType;
import dev.expo.checkpoint.DType;
import dev.expo.checkpoint.Dtypes;
import dev.expo.modeling.cpu.MatrixKernels;

import java.util.Objects;

/**
 * Where a model runs and in which precision: FP32 on CPU; FP16 (or FP32) on a GPU when DJL sees one. Checkpoint
 * weights are converted in Java (BF16 and F16 widened exactly to float32) before DJL ever sees them: DJL's PyTorch
 * engine has no BF16.
 *
 * <p>{@code kvCacheDtype}: what the CPU decoder's KV cache holds, F32 (the computed values; the default) or BF16
 * (half the memory and half the attention reads per step, values rounded once when stored). On a GPU the cache is in
 * the compute type.
 *
 * <p>{@code cpuKernels}: what runs the CPU decoder's matrix products (default: the compiled kernels when they loaded).
 */
public record ModelOptions(Device device, DataType computeType, DType kvCacheDtype, MatrixKernels cpuKernels) {

    public ModelOptions(Device device, DataType computeType) {
        this(device, computeType, DType.F32, MatrixKernels.best());
    }

    public ModelOptions {
        Objects.requireNonNull(cpuKernels, "cpuKernels");
        if (kvCacheDtype != DType.F32 && kvCacheDtype != DType.BF16) {
            throw new IllegalArgumentException("the KV cache holds float32 or bfloat16, not " + kvCacheDtype);
        }
        if (kvCacheDtype == DType.BF16 && device.isGpu()) {
            throw new IllegalArgumentException("a bfloat16 KV cache is the CPU decoder's; on a GPU the cache is in the "
                    + "compute type (DJL's PyTorch engine has no BF16)");
        }
        if (computeType != DataType.FLOAT32 && computeType != DataType.FLOAT16) {
            throw new IllegalArgumentException("compute type must be FLOAT32 or FLOAT16, not " + computeType);
        }
        if (computeType == DataType.FLOAT16 && !device.isGpu()) {
            throw new IllegalArgumentException("FLOAT16 compute needs a GPU; on CPU the runtime computes in FLOAT32");
        }
    }

    /** The same, with the KV cache in {@code dtype}: "float32" or "bfloat16" (PyTorch's names). */
    public ModelOptions withKvCache(String dtype) {
        DType parsed = Dtypes.fromTorchName(dtype);
        if (parsed != DType.F32 && parsed != DType.BF16) {
            throw new IllegalArgumentException("kv-cache-dtype must be float32 or bfloat16, not " + dtype);
        }
        return new ModelOptions(device, computeType, parsed, cpuKernels);
    }

    /** The same, with the CPU decoder's matrix products run by {@code kernels}. */
    public ModelOptions withCpuKernels(MatrixKernels kernels) {
        return new ModelOptions(device, computeType, kvCacheDtype, kernels);
    }

    public static ModelOptions cpu() {
        return new ModelOptions(Device.cpu(), DataType.FLOAT32);
    }

    /**
     * The configured choice: "cpu", "gpu" (FP16 on the first GPU), "gpu-fp32", or "auto" (a GPU in FP16 when present,
     * else the CPU). "gpu" and "gpu-fp32" are refused here when PyTorch sees no GPU, rather than by every model load
     * later with PyTorch's own error.
     */
    public static ModelOptions of(String choice) {
        return of(choice, Engine.getInstance().getGpuCount());
    }

    static ModelOptions of(String choice, int gpus) {
        return switch (choice) {
            case "cpu" -> cpu();
            case "gpu" -> new ModelOptions(gpu(choice, gpus), DataType.FLOAT16);
            case "gpu-fp32" -> new ModelOptions(gpu(choice, gpus), DataType.FLOAT32);
            case "auto" -> gpus > 0 ? new ModelOptions(Device.gpu(), DataType.FLOAT16) : cpu();
            default -> throw new IllegalArgumentException("device must be cpu, gpu, gpu-fp32 or auto, not " + choice);
        };
    }

    private static Device gpu(String choice, int gpus) {
        if (gpus == 0) {
            throw new IllegalArgumentException("device " + choice + " needs a GPU, but PyTorch sees none: the build "
                    + "bundles PyTorch for the CPU unless built with a CUDA flavour (docs/gpu.md); use cpu, or auto "
                    + "to take a GPU when there is one");
        }
        return Device.gpu();
    }
}

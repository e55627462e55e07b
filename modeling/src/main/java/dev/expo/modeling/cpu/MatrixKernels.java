package dev.expo.modeling.cpu;

import dev.expo.checkpoint.DType;

import java.util.Locale;

/**
 * Which code runs the CPU decoder's matrix products: the Java Vector API loops of {@link Kernels}, or the compiled
 * BF16 kernels of {@link NativeKernels} (the same bits, faster for a prompt). A value each decoder is built with, not
 * a process-wide switch: two decoders in one process can run either (the model benchmark compares them so).
 */
public enum MatrixKernels {

    /** The Java Vector API loops, for every weight dtype. */
    JAVA,
    /** The compiled kernels for BF16 weights (the Java loops for F32 ones); only when they loaded in this process. */
    NATIVE;

    private static final NativeKernels COMPILED = NativeKernels.load();

    /** The compiled kernels when they loaded, else the Java ones. */
    public static MatrixKernels best() {
        return COMPILED.available() ? NATIVE : JAVA;
    }

    /** Whether the compiled kernels loaded in this process (they are built with the module where gcc is found). */
    public static boolean nativeAvailable() {
        return COMPILED.available();
    }

    /**
     * A configured choice: "auto" ({@link #best}), "native" (refused when the compiled kernels did not load, with
     * why) or "java"; any case.
     *
     * @param setting the setting's name, for the messages
     */
    public static MatrixKernels parse(String choice, String setting) {
        return switch (choice.toLowerCase(Locale.ROOT)) {
            case "auto" -> best();
            case "native" -> {
                if (!nativeAvailable()) {
                    throw new IllegalStateException(setting + "=native, but there are no compiled kernels: "
                            + COMPILED.description() + "; use auto or java");
                }
                yield NATIVE;
            }
            case "java" -> JAVA;
            default -> throw new IllegalArgumentException(setting + " must be auto, native or java, not \"" + choice
                    + "\"");
        };
    }

    /** {@code out[b][j] = sum_k w[j][k] * x[b][k]} for b in [0, batch), j in [0, rows), by these kernels. */
    public void matmul(Matrix w, float[][] x, float[][] out, int batch) {
        if (this == NATIVE && w.dtype() == DType.BF16) {
            Kernels.matmulCompiled(COMPILED, w, x, out, batch);
        } else {
            Kernels.matmul(w, x, out, batch);
        }
    }

    /** What runs the BF16 products, and, for the Java loops, why the compiled ones do not. */
    public String description() {
        if (this == NATIVE) {
            return COMPILED.description();
        }
        return COMPILED.available() ? "Java Vector API (the compiled kernels are turned off)"
                : "Java Vector API (" + COMPILED.description() + ")";
    }

    /** Refuses NATIVE where the compiled kernels did not load (a decoder is built with a value that can run). */
    MatrixKernels requireAvailable() {
        if (this == NATIVE && !nativeAvailable()) {
            throw new IllegalStateException("no compiled kernels: " + COMPILED.description());
        }
        return this;
    }
}

package dev.expo.modeling.cpu;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Locale;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;

/**
 * The BF16 matrix products compiled from {@code src/main/c/expo_kernels.c} (AVX2 + FMA), called through the foreign
 * function API. They compute every output with exactly the operations of {@link Kernels}' Java loops, in the same
 * order, so that which one runs changes no bit (KernelsNativeTest). They make a prompt's prefill faster because the C
 * compiler keeps a 4x3 register tile in registers, where C2 spills any tile wider than eight accumulators; a decode
 * step, bound by streaming the weights, runs about as fast in either.
 *
 * <p>The library is built with the module when the machine has gcc (Linux x86-64) and packed in the jar. Without it,
 * or on another CPU, {@link #load()} says why and the Java loops run; {@link MatrixKernels} chooses between the two
 * per decoder (the inference service's {@code inference.cpu-kernels}).
 */
final class NativeKernels {

    private static final String RESOURCE = "linux-x86_64/libexpo_kernels.so";

    /** {@code expo_matmul_bf16(w, cols, from, to, x, batch, out, outStride)}, or null when not loaded. */
    private final MethodHandle matmul;
    /** The library when loaded; otherwise why not. */
    private final String description;

    private NativeKernels(MethodHandle matmul, String description) {
        this.matmul = matmul;
        this.description = description;
    }

    boolean available() {
        return matmul != null;
    }

    String description() {
        return description;
    }

    /**
     * {@code out[b * outStride + j] = sum_k w[j][k] * x[b * cols + k]} for b in [0, batch), j in [from, to), over the
     * columns up to the last whole group of eight (the caller adds the rest, as {@link Kernels} does). The caller has
     * checked every bound: the C code reads and writes what these say.
     */
    void matmulBf16(MemorySegment w, int cols, int from, int to, float[] x, int batch, float[] out, int outStride) {
        try {
            matmul.invokeExact(w, cols, from, to, MemorySegment.ofArray(x), batch, MemorySegment.ofArray(out),
                    outStride);
        } catch (Throwable e) {
            throw new IllegalStateException("native matrix product failed", e);
        }
    }

    /** Loads the library; when it cannot, says why (in {@link #description()}) and the Java loops run. */
    static NativeKernels load() {
        String os = System.getProperty("os.name", "").toLowerCase(Locale.ROOT);
        String arch = System.getProperty("os.arch", "");
        if (!os.contains("linux") || !(arch.equals("amd64") || arch.equals("x86_64"))) {
            return javaBecause("no native kernels are built for " + os + " " + arch);
        }
        URL resource = NativeKernels.class.getResource(RESOURCE);
        if (resource == null) {
            return javaBecause("this build has no " + RESOURCE + " (gcc was not found when the module was built)");
        }
        try {
            Linker linker = Linker.nativeLinker();
            SymbolLookup symbols = open(resource);
            MethodHandle supported = linker.downcallHandle(symbols.findOrThrow("expo_kernels_supported"),
                    FunctionDescriptor.of(JAVA_INT));
            if ((int) supported.invokeExact() == 0) {
                return javaBecause("this CPU lacks AVX2 or FMA");
            }
            // Critical: no thread-state change around calls of a few milliseconds at most, and the arrays passed
            // straight from the heap rather than copied.
            MethodHandle matmul = linker.downcallHandle(symbols.findOrThrow("expo_matmul_bf16"),
                    FunctionDescriptor.ofVoid(ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT, ADDRESS,
                            JAVA_INT),
                    Linker.Option.critical(true));
            return new NativeKernels(matmul, "compiled AVX2 kernels (" + RESOURCE + ")");
        } catch (Throwable e) {
            return javaBecause("the native kernels did not load: " + e);
        }
    }

    private static NativeKernels javaBecause(String reason) {
        return new NativeKernels(null, reason);
    }

    /**
     * Opens the library: where it is when running from classes; else a private copy out of the jar, deleted once
     * opened (the process keeps its mapping), so that no file is left behind however the process ends.
     */
    private static SymbolLookup open(URL resource) throws IOException, URISyntaxException {
        if (resource.getProtocol().equals("file")) {
            return SymbolLookup.libraryLookup(Path.of(resource.toURI()), Arena.global());
        }
        Path copy = Files.createTempFile("expo_kernels", ".so");   // owner-only permissions
        try {
            try (InputStream in = resource.openStream()) {
                Files.copy(in, copy, StandardCopyOption.REPLACE_EXISTING);
            }
            return SymbolLookup.libraryLookup(copy, Arena.global());
        } finally {
            Files.deleteIfExists(copy);
        }
    }
}

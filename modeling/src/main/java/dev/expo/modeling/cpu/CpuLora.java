package dev.expo.modeling.cpu;

import dev.expo.modeling.NdArrays;
import dev.expo.modeling.lora.LoraAdapter;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A LoRA adapter for the CPU decoder, with a scale per row: adds {@code scale * (alpha / r) * B (A x)} to a module's
 * output (PEFT's unmerged forward). A and B are small; they live on the heap.
 */
public final class CpuLora {

    /** {@code scaling}: the module's lora_alpha / r. */
    private record Module(float[] a, float[] b, int rank, int in, int out, float scaling) {
    }

    private final Map<String, Module> modules = new HashMap<>();
    private final float[] rowScales;   // the request's scale of each row

    private CpuLora(float[] rowScales) {
        this.rowScales = rowScales;
    }

    /** The adapter's weights for the CPU path (copied once; reuse the result across calls with {@link #scaled}). */
    public static CpuLora of(LoraAdapter adapter) {
        CpuLora lora = new CpuLora(new float[0]);
        for (String path : adapter.modulePaths()) {
            LoraAdapter.Module module = adapter.module(path);
            long[] a = module.a().getShape().getShape();
            long[] b = module.b().getShape().getShape();
            lora.modules.put(path, new Module(NdArrays.toFloats(module.a()), NdArrays.toFloats(module.b()),
                    (int) a[0], (int) a[1], (int) b[0], (float) module.scaling()));
        }
        return lora;
    }

    /** The same weights with these per-row scales (the request's; each module's alpha / r is applied with them). */
    public CpuLora scaled(float[] scales) {
        CpuLora copy = new CpuLora(scales.clone());
        copy.modules.putAll(modules);
        return copy;
    }

    static void apply(List<CpuLora> adapters, String module, float[][] input, float[][] output, int outOffset,
                      int rows) {
        for (CpuLora lora : adapters) {
            Module m = lora.modules.get(module);
            if (m == null) {
                continue;
            }
            float[] down = new float[m.rank()];
            for (int r = 0; r < rows; r++) {
                float scale = lora.rowScales[r] * m.scaling();
                if (scale == 0f) {
                    continue;
                }
                for (int k = 0; k < m.rank(); k++) {
                    down[k] = Kernels.dot(m.a(), k * m.in(), input[r], 0, m.in());
                }
                for (int j = 0; j < m.out(); j++) {
                    float delta = 0f;
                    for (int k = 0; k < m.rank(); k++) {
                        delta += m.b()[j * m.rank() + k] * down[k];
                    }
                    output[r][outOffset + j] += scale * delta;
                }
            }
        }
    }
}

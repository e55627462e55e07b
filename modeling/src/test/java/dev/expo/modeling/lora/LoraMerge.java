package dev.expo.modeling.lora;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.expo.modeling.NdArrays;
import dev.expo.modeling.llama.LlamaModel;

/**
 * PEFT's merge_and_unload for one module, which the tests compare adapters by: {@code W + scale * (lora_alpha / r) *
 * B A}, in float32 as PyTorch adds it. The runtime applies adapters unmerged (per request, with per-row scales).
 */
final class LoraMerge {

    private LoraMerge() {
    }

    /** The module's weight with the adapter merged in, row-major, from the model's (unmerged) weight. */
    static float[] mergedWeight(LlamaModel model, LoraAdapter adapter, String modulePath, float scale) {
        LoraAdapter.Module lora = adapter.module(modulePath);
        float factor = (float) (scale * lora.scaling());
        float[] weight = model.weight(modulePath + ".weight");
        try (NDManager scope = lora.b().getManager().newSubManager()) {
            NDArray product = lora.b().matMul(lora.a());
            product.attach(scope);
            float[] delta = NdArrays.toFloats(product.mul(factor));
            for (int i = 0; i < weight.length; i++) {
                weight[i] += delta[i];
            }
        }
        return weight;
    }
}

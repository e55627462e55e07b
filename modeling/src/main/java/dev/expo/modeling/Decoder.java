package dev.expo.modeling;

import dev.expo.modeling.llama.LlamaConfig;
import dev.expo.modeling.lora.LoraApplication;

import java.util.List;

/**
 * A causal language model as generation and scoring use it: rows of input embeddings in, logits out, keys and values
 * kept per sequence slot. Two implementations compute the same thing: {@link dev.expo.modeling.cpu.CpuDecoder}
 * (Java kernels, the CPU default) and {@link DjlDecoder} (DJL/PyTorch, for GPUs).
 */
public interface Decoder extends AutoCloseable {

    LlamaConfig config();

    /** The input embedding of a token. */
    float[] embed(int token);

    Cache newCache(int slots);

    /** Bytes of keys and values that one position of one sequence takes in this decoder's cache. */
    default long kvBytesPerPosition() {
        LlamaConfig config = config();
        return 2L * config.numLayers() * config.numKvHeads() * config.headDim() * Float.BYTES;
    }

    /**
     * Runs rows through the model, appending their keys and values to their slots (rows of one slot in position
     * order), and returns the logits of the rows asked for (null for the others).
     *
     * @param adapters LoRA adapters with per-row scales
     */
    float[][] logits(float[][] inputs, int[] slots, Cache cache, List<LoraApplication> adapters, boolean[] wanted);

    @Override
    void close();

    /** Per-slot keys and values. */
    interface Cache {
        int slots();

        int length(int slot);

        void reset(int slot);
    }
}

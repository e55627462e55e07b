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
     * Whether every row of a call is computed on its own, unpadded: its result the same to the bit whatever other rows
     * share the call. Then a prompt's chunk and other sequences' single decode rows can go through one call, which
     * reads the weights once for both. Not so for a decoder that pads every slot's rows to the widest slot's: each
     * decode row would cost as much as the chunk.
     */
    default boolean rowsIndependent() {
        return false;
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

        /**
         * Takes a slot's keys and values out of the cache, leaving the slot empty, so that a later sequence that
         * starts with the same positions can take them over ({@link #attach}) instead of computing them again. Null
         * when this cache cannot: its rows' values then depend on what they were computed with, and reusing them
         * would change a later request's output.
         */
        default Detached detach(int slot) {
            return null;
        }

        /**
         * Puts keys and values taken by {@link #detach} (from this cache, possibly another slot) into an empty slot,
         * keeping their first {@code keep} positions; the next rows of the slot go after them. The slot owns them from
         * then on.
         */
        default void attach(int slot, Detached kv, int keep) {
            throw new UnsupportedOperationException("this cache cannot take over detached keys and values");
        }

        /** As {@link #attach}, but copies the first {@code keep} positions: {@code kv} stays as it was. */
        default void attachCopy(int slot, Detached kv, int keep) {
            throw new UnsupportedOperationException("this cache cannot take over detached keys and values");
        }
    }

    /** A slot's keys and values outside any slot. */
    interface Detached {
        /** Positions held. */
        int length();

        /** Memory held. */
        long bytes();
    }
}

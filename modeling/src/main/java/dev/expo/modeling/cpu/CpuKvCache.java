package dev.expo.modeling.cpu;

import dev.expo.checkpoint.DType;
import dev.expo.checkpoint.Dtypes;
import dev.expo.modeling.Decoder;

import java.util.Arrays;
import java.util.Objects;

/**
 * The CPU decoder's keys and values, per layer and sequence slot: {@code [kvHeads][capacity][headDim]} arrays that
 * grow (doubling, up to the context) as the slot's sequence does. A slot is reused by resetting its length.
 *
 * <p>Float32 by default: the values the model computed, so generation matches the float32 goldens bit for bit. In
 * BF16 (opt-in, as vLLM's {@code kv_cache_dtype}) the cache takes half the memory and a decode step reads half the
 * bytes of attention (most of a long-context step); each key and value is rounded once to BF16 when stored, which
 * moves logits by about BF16's precision (2^-8 relative).
 */
public final class CpuKvCache implements Decoder.Cache {

    private final int layers;
    private final int kvHeads;
    private final int headDim;
    private final int maxCapacity;
    private final DType dtype;
    // [layer][slot][kvHeads * capacity * headDim]: float[] in F32, short[] (BF16 bits) in BF16
    private final Object[][] keys;
    private final Object[][] values;
    private final int[] capacity;       // per slot
    private final int[] lengths;

    public CpuKvCache(int layers, int kvHeads, int headDim, int maxCapacity, int slots) {
        this(layers, kvHeads, headDim, maxCapacity, slots, DType.F32);
    }

    public CpuKvCache(int layers, int kvHeads, int headDim, int maxCapacity, int slots, DType dtype) {
        this.layers = layers;
        this.kvHeads = kvHeads;
        this.headDim = headDim;
        this.maxCapacity = maxCapacity;
        this.dtype = supported(dtype);
        this.keys = new Object[layers][slots];
        this.values = new Object[layers][slots];
        this.capacity = new int[slots];
        this.lengths = new int[slots];
    }

    /** The dtype itself if a cache can hold it (F32, BF16); otherwise IllegalArgumentException. */
    static DType supported(DType dtype) {
        if (dtype != DType.F32 && dtype != DType.BF16) {
            throw new IllegalArgumentException("the KV cache holds F32 or BF16, not " + dtype);
        }
        return dtype;
    }

    public DType dtype() {
        return dtype;
    }

    @Override
    public int slots() {
        return lengths.length;
    }

    @Override
    public int length(int slot) {
        return lengths[slot];
    }

    public int maxCapacity() {
        return maxCapacity;
    }

    /** Empties a slot (and lets its memory go). */
    @Override
    public void reset(int slot) {
        lengths[slot] = 0;
        capacity[slot] = 0;
        for (int layer = 0; layer < layers; layer++) {
            keys[layer][slot] = null;
            values[layer][slot] = null;
        }
    }

    /**
     * The slot's arrays move out (no copy): a row's keys and values here are the same bits whether it was computed
     * in a prompt or a decode step, alone or in a batch, so a sequence that takes them over computes exactly what it
     * would have from scratch.
     */
    @Override
    public Decoder.Detached detach(int slot) {
        Object[] k = new Object[layers];
        Object[] v = new Object[layers];
        for (int layer = 0; layer < layers; layer++) {
            k[layer] = keys[layer][slot];
            v[layer] = values[layer][slot];
        }
        Held held = new Held(this, k, v, capacity[slot], lengths[slot]);
        reset(slot);
        return held;
    }

    @Override
    public void attach(int slot, Decoder.Detached kv, int keep) {
        Held held = attachable(slot, kv, keep);
        for (int layer = 0; layer < layers; layer++) {
            keys[layer][slot] = held.keys[layer];
            values[layer][slot] = held.values[layer];
        }
        capacity[slot] = held.capacity;
        lengths[slot] = keep;
    }

    /** Copies the first {@code keep} positions of every layer and head into the slot's own arrays. */
    @Override
    public void attachCopy(int slot, Decoder.Detached kv, int keep) {
        Held held = attachable(slot, kv, keep);
        if (keep == 0) {
            return;
        }
        reserve(slot, keep);
        for (int layer = 0; layer < layers; layer++) {
            for (int h = 0; h < kvHeads; h++) {
                System.arraycopy(held.keys[layer], h * held.capacity * headDim, keys[layer][slot],
                        h * capacity[slot] * headDim, keep * headDim);
                System.arraycopy(held.values[layer], h * held.capacity * headDim, values[layer][slot],
                        h * capacity[slot] * headDim, keep * headDim);
            }
        }
        lengths[slot] = keep;
    }

    /** The detached positions, if they can go into the slot keeping {@code keep} of them. */
    private Held attachable(int slot, Decoder.Detached kv, int keep) {
        if (!(kv instanceof Held held) || held.owner != this) {
            throw new IllegalArgumentException("keys and values detached from another cache");
        }
        if (lengths[slot] != 0 || capacity[slot] != 0) {
            throw new IllegalStateException("slot " + slot + " is not empty");
        }
        Objects.checkIndex(keep, held.length + 1);
        return held;
    }

    private record Held(CpuKvCache owner, Object[] keys, Object[] values, int capacity, int length)
            implements Decoder.Detached {
        @Override
        public long bytes() {
            return 2L * owner.layers * owner.kvHeads * capacity * owner.headDim * owner.dtype.byteSize();
        }
    }

    void advance(int slot, int by) {
        lengths[slot] += by;
    }

    /** Room for {@code positions} positions in the slot. */
    void reserve(int slot, int positions) {
        if (positions > maxCapacity) {
            throw new IllegalArgumentException("a sequence of " + positions + " positions exceeds the context of "
                    + maxCapacity);
        }
        if (positions <= capacity[slot]) {
            return;
        }
        int grown = Math.max(64, capacity[slot]);
        while (grown < positions) {
            grown = Math.min(maxCapacity, grown * 2);
        }
        for (int layer = 0; layer < layers; layer++) {
            keys[layer][slot] = grow(keys[layer][slot], capacity[slot], grown);
            values[layer][slot] = grow(values[layer][slot], capacity[slot], grown);
        }
        capacity[slot] = grown;
    }

    private Object grow(Object old, int oldCapacity, int newCapacity) {
        int length = kvHeads * newCapacity * headDim;
        Object bigger = dtype == DType.BF16 ? new short[length] : new float[length];
        if (old != null) {
            for (int h = 0; h < kvHeads; h++) {
                System.arraycopy(old, h * oldCapacity * headDim, bigger, h * newCapacity * headDim,
                        oldCapacity * headDim);
            }
        }
        return bigger;
    }

    /** Stores one head's key and value at a position: {@code headDim} floats each, from the given offsets. */
    void store(int layer, int slot, int kvHead, int position, float[] source, int keyOffset, int valueOffset) {
        int at = offset(slot, kvHead, position);
        if (dtype == DType.BF16) {
            short[] k = (short[]) keys[layer][slot];
            short[] v = (short[]) values[layer][slot];
            for (int d = 0; d < headDim; d++) {
                k[at + d] = Dtypes.floatToBf16(source[keyOffset + d]);
                v[at + d] = Dtypes.floatToBf16(source[valueOffset + d]);
            }
        } else {
            System.arraycopy(source, keyOffset, keys[layer][slot], at, headDim);
            System.arraycopy(source, valueOffset, values[layer][slot], at, headDim);
        }
    }

    /** The slot's keys of a layer: a {@code float[]} in F32, a {@code short[]} of BF16 bits in BF16. */
    Object keys(int layer, int slot) {
        return keys[layer][slot];
    }

    Object values(int layer, int slot) {
        return values[layer][slot];
    }

    /** Offset of (kvHead, position) in a slot's array. */
    int offset(int slot, int kvHead, int position) {
        return (kvHead * capacity[slot] + position) * headDim;
    }

    @Override
    public String toString() {
        return "CpuKvCache[" + dtype + ", lengths=" + Arrays.toString(lengths) + "]";
    }
}

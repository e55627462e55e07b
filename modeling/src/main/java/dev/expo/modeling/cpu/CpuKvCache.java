package dev.expo.modeling.cpu;

import java.util.Arrays;

/**
 * The CPU decoder's keys and values, per layer and sequence slot: {@code [kvHeads][capacity][headDim]} float arrays
 * that grow (doubling, up to the context) as the slot's sequence does. A slot is reused by resetting its length.
 */
public final class CpuKvCache implements dev.expo.modeling.Decoder.Cache {

    private final int layers;
    private final int kvHeads;
    private final int headDim;
    private final int maxCapacity;
    private final float[][][] keys;     // [layer][slot][kvHeads * capacity * headDim]
    private final float[][][] values;
    private final int[] capacity;       // per slot
    private final int[] lengths;

    public CpuKvCache(int layers, int kvHeads, int headDim, int maxCapacity, int slots) {
        this.layers = layers;
        this.kvHeads = kvHeads;
        this.headDim = headDim;
        this.maxCapacity = maxCapacity;
        this.keys = new float[layers][slots][];
        this.values = new float[layers][slots][];
        this.capacity = new int[slots];
        this.lengths = new int[slots];
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

    private float[] grow(float[] old, int oldCapacity, int newCapacity) {
        float[] bigger = new float[kvHeads * newCapacity * headDim];
        if (old != null) {
            for (int h = 0; h < kvHeads; h++) {
                System.arraycopy(old, h * oldCapacity * headDim, bigger, h * newCapacity * headDim,
                        oldCapacity * headDim);
            }
        }
        return bigger;
    }

    float[] keys(int layer, int slot) {
        return keys[layer][slot];
    }

    float[] values(int layer, int slot) {
        return values[layer][slot];
    }

    /** Offset of (kvHead, position) in a slot's array. */
    int offset(int slot, int kvHead, int position) {
        return (kvHead * capacity[slot] + position) * headDim;
    }

    @Override
    public String toString() {
        return "CpuKvCache[lengths=" + Arrays.toString(lengths) + "]";
    }
}

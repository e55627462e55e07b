package dev.expo.modeling.llama;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import java.util.Arrays;

/**
 * Keys and values of every decoder layer for a fixed number of sequence slots: per layer two arrays of shape
 * [slots, kvHeads, capacity, headDim], plus each slot's length. Capacity grows (doubling, up to the model's context)
 * as sequences get longer; a slot is reset by setting its length to 0 (its old entries are overwritten, and masked
 * until then).
 */
public final class KvCache implements AutoCloseable {

    private final NDManager manager;
    private final int layers;
    private final int slots;
    private final int kvHeads;
    private final int headDim;
    private final int maxCapacity;
    private final DataType type;
    private final NDArray[] keys;
    private final NDArray[] values;
    private final int[] lengths;
    private int capacity;

    public KvCache(NDManager parent, LlamaConfig config, DataType type, int slots, int initialCapacity) {
        this.manager = parent.newSubManager();
        this.layers = config.numLayers();
        this.slots = slots;
        this.kvHeads = config.numKvHeads();
        this.headDim = config.headDim();
        this.maxCapacity = config.maxPositions();
        this.type = type;
        this.keys = new NDArray[layers];
        this.values = new NDArray[layers];
        this.lengths = new int[slots];
        this.capacity = Math.min(Math.max(16, initialCapacity), maxCapacity);
        for (int layer = 0; layer < layers; layer++) {
            keys[layer] = manager.zeros(new Shape(slots, kvHeads, capacity, headDim), type);
            values[layer] = manager.zeros(new Shape(slots, kvHeads, capacity, headDim), type);
        }
    }

    public int slots() {
        return slots;
    }

    public int length(int slot) {
        return lengths[slot];
    }

    public int capacity() {
        return capacity;
    }

    /** The model's context length: no slot may grow past it. */
    public int maxCapacity() {
        return maxCapacity;
    }

    public void reset(int slot) {
        lengths[slot] = 0;
    }

    /** Shortens a slot to {@code length} positions (later entries are masked, then overwritten). */
    public void truncate(int slot, int length) {
        lengths[slot] = Math.min(lengths[slot], length);
    }

    void advance(int slot, int by) {
        lengths[slot] += by;
    }

    /** Makes room for {@code needed} positions in every slot, copying what is cached. */
    void ensureCapacity(int needed) {
        if (needed <= capacity) {
            return;
        }
        if (needed > maxCapacity) {
            throw new IllegalArgumentException("a sequence of " + needed + " positions exceeds the model's context of "
                    + maxCapacity);
        }
        int grown = capacity;
        while (grown < needed) {
            grown = Math.min(maxCapacity, grown * 2);
        }
        for (int layer = 0; layer < layers; layer++) {
            keys[layer] = grow(keys[layer], grown);
            values[layer] = grow(values[layer], grown);
        }
        capacity = grown;
    }

    private NDArray grow(NDArray old, int grown) {
        NDArray bigger = manager.zeros(new Shape(slots, kvHeads, grown, headDim), type);
        bigger.set(new NDIndex(":, :, :{}", capacity), old);
        old.close();
        return bigger;
    }

    /**
     * Writes new keys and values, {@code [B, T, kvHeads, headDim]}, at positions {@code positions[B, T]} of the
     * given slots.
     */
    void write(int layer, NDArray slotIndex, NDArray positions, NDArray newKeys, NDArray newValues) {
        NDIndex where = new NDIndex("{}, :, {}", slotIndex, positions);
        keys[layer].set(where, newKeys);
        values[layer].set(where, newValues);
    }

    /**
     * The first {@code length} cached positions of the slots, {@code [B, kvHeads, length, headDim]}, owned by
     * {@code scope} (a view of the cache when the slots are consecutive, the usual case; a copy otherwise).
     */
    NDArray keys(NDManager scope, int layer, int[] slotIds, NDArray slotIndex, int length) {
        return read(scope, keys[layer], slotIds, slotIndex, length);
    }

    NDArray values(NDManager scope, int layer, int[] slotIds, NDArray slotIndex, int length) {
        return read(scope, values[layer], slotIds, slotIndex, length);
    }

    private static NDArray read(NDManager scope, NDArray cache, int[] slotIds, NDArray slotIndex, int length) {
        if (isContiguous(slotIds)) {
            return cache.get(scope, new NDIndex("{}:{}, :, :{}", slotIds[0], slotIds[0] + slotIds.length, length));
        }
        return cache.get(scope, new NDIndex("{}", slotIndex)).get(new NDIndex(":, :, :{}", length));
    }

    static boolean isContiguous(int[] slotIds) {
        for (int i = 1; i < slotIds.length; i++) {
            if (slotIds[i] != slotIds[0] + i) {
                return false;
            }
        }
        return true;
    }

    @Override
    public String toString() {
        return "KvCache[slots=" + slots + ", capacity=" + capacity + ", lengths=" + Arrays.toString(lengths) + "]";
    }

    @Override
    public void close() {
        manager.close();
    }
}

package dev.expo.inference.engine;

import dev.expo.modeling.Decoder;

/**
 * A finished sequence's keys and values, kept for a later request that starts the same way.
 *
 * @param positions what each cached position holds: a token id, or -1 for an image row (the image is in the key)
 */
final class ParkedKv {

    private final PrefixKey key;
    private final int[] positions;
    private final long bytes;
    private volatile Decoder.Detached kv;

    ParkedKv(PrefixKey key, int[] positions, Decoder.Detached kv) {
        this.key = key;
        this.positions = positions;
        this.bytes = kv.bytes();
        this.kv = kv;
    }

    PrefixKey key() {
        return key;
    }

    int[] positions() {
        return positions;
    }

    long bytes() {
        return bytes;
    }

    /** Whether it still holds its keys and values (the budget has neither evicted nor handed them over). */
    boolean held() {
        return kv != null;
    }

    /** The keys and values, still held here (null once evicted or handed over). */
    Decoder.Detached peek() {
        return kv;
    }

    /** Hands the keys and values over, once; called by the budget under its lock. */
    Decoder.Detached take() {
        Decoder.Detached taken = kv;
        kv = null;
        return taken;
    }
}

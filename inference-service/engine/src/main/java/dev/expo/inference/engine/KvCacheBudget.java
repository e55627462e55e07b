package dev.expo.inference.engine;

import dev.expo.modeling.Decoder;

import java.util.Iterator;
import java.util.LinkedHashSet;

/**
 * The memory every model's KV caches may hold together. A sequence reserves what its cache will grow to (its prompt
 * plus the new tokens it may ask for, in the caches' doubling steps) when it is admitted into a batch, and gives it
 * back when it leaves, so that concurrent long generations wait for room instead of running the heap out.
 *
 * <p>What is left over may hold finished sequences' caches, parked for a later request that starts the same way
 * ({@link PrefixCache}); they give way, least recently used first, whenever a sequence of any model needs the room.
 */
final class KvCacheBudget {

    private final long capacity;
    private long reserved;
    private long parkedBytes;
    private final LinkedHashSet<ParkedKv> parked = new LinkedHashSet<>();   // least recently used first

    KvCacheBudget(long capacity) {
        if (capacity <= 0) {
            throw new IllegalArgumentException("the KV cache budget must be positive");
        }
        this.capacity = capacity;
    }

    long capacity() {
        return capacity;
    }

    synchronized boolean tryReserve(long bytes) {
        if (!makeRoom(bytes)) {
            return false;
        }
        reserved += bytes;
        return true;
    }

    synchronized void release(long bytes) {
        reserved -= bytes;
    }

    /** Bytes reserved by sequences in batches (parked caches not included). */
    synchronized long reserved() {
        return reserved;
    }

    /** Bytes held by parked caches. */
    synchronized long parked() {
        return parkedBytes;
    }

    /**
     * Keeps a finished sequence's cache in the room no sequence holds, evicting older parked caches if need be (the
     * newest is the likeliest to be continued); false if it does not fit even so.
     */
    synchronized boolean park(ParkedKv kv) {
        if (reserved + kv.bytes() > capacity) {
            return false;
        }
        makeRoom(kv.bytes());
        parked.add(kv);
        parkedBytes += kv.bytes();
        return true;
    }

    /**
     * A parked cache's keys and values, to copy from (it stays parked, and now counts as the most recently used);
     * null if it has been evicted. The arrays stay readable while the caller holds them, even if evicted after.
     */
    synchronized Decoder.Detached share(ParkedKv kv) {
        if (!parked.remove(kv)) {
            return null;
        }
        parked.add(kv);
        return kv.peek();
    }

    /**
     * Reserves {@code bytes} (no less than the parked cache holds) for a sequence that takes the parked cache over:
     * the cache's memory counts toward them. Null, with nothing reserved, when the cache has been evicted or when
     * there is no room even with it.
     */
    synchronized Decoder.Detached reserveTakingOver(ParkedKv kv, long bytes) {
        if (kv.bytes() > bytes) {
            throw new IllegalArgumentException("a sequence reserving " + bytes + " bytes cannot take over a cache of "
                    + kv.bytes());
        }
        if (!parked.remove(kv)) {
            return null;
        }
        parkedBytes -= kv.bytes();
        if (!makeRoom(bytes)) {
            parked.add(kv);
            parkedBytes += kv.bytes();
            return null;
        }
        reserved += bytes;
        return kv.take();
    }

    /** Lets a parked cache go (if it is still parked). */
    synchronized void drop(ParkedKv kv) {
        if (parked.remove(kv)) {
            parkedBytes -= kv.bytes();
            kv.take();
        }
    }

    /** Evicts parked caches, oldest first, until {@code bytes} more fit; whether they do. */
    private boolean makeRoom(long bytes) {
        Iterator<ParkedKv> oldest = parked.iterator();
        while (reserved + parkedBytes + bytes > capacity && oldest.hasNext()) {
            ParkedKv kv = oldest.next();
            oldest.remove();
            parkedBytes -= kv.bytes();
            kv.take();   // its arrays can be collected now, not when its owner next looks
        }
        return reserved + parkedBytes + bytes <= capacity;
    }

    /**
     * What a sequence of {@code positions} positions holds once its cache has grown to them: caches grow by doubling
     * from 64 positions, up to the context.
     */
    static long bytesFor(int positions, int context, long bytesPerPosition) {
        int capacity = 64;
        while (capacity < positions) {
            capacity *= 2;
        }
        return Math.min(capacity, context) * bytesPerPosition;   // positions never exceed the context
    }
}

package dev.expo.inference.engine;

/**
 * The memory every model's KV caches may hold together. A sequence reserves what its cache will grow to (its prompt
 * plus the new tokens it may ask for, in the caches' doubling steps) when it is admitted into a batch, and gives it
 * back when it leaves, so that concurrent long generations wait for room instead of running the heap out.
 */
final class KvCacheBudget {

    private final long capacity;
    private long reserved;

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
        if (reserved + bytes > capacity) {
            return false;
        }
        reserved += bytes;
        return true;
    }

    synchronized void release(long bytes) {
        reserved -= bytes;
    }

    synchronized long reserved() {
        return reserved;
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

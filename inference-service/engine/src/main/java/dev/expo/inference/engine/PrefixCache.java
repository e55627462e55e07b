package dev.expo.inference.engine;

import dev.expo.modeling.Decoder;

import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.Iterator;

/**
 * Prefix caching for one decoder's batch, as vLLM's automatic prefix caching does for chat: a finished sequence's
 * keys and values are parked (moved out of its slot, not copied) in the KV cache budget no sequence holds, and a new
 * request that starts with the same positions computes only the rest of its prompt. The next turn of a conversation
 * continues the whole of its previous turn's cache and takes it over; a request that shares only a beginning (a
 * system prompt, the same question again) copies that part and leaves the cache parked for others. Only for caches
 * whose rows hold the same bits however they were computed ({@link Decoder.Cache#detach}): a request gets exactly
 * what it would have without the cache.
 */
final class PrefixCache {

    /** A parked cache that a sequence can start from, and how many of its positions the sequence keeps. */
    record Match(ParkedKv parked, int keep) {
        /** Whether the sequence continues all of the cache: it can take the cache over instead of copying it. */
        boolean whole() {
            return keep == parked.positions().length;
        }
    }

    private final KvCacheBudget budget;
    private final int maxEntries;
    private final ArrayDeque<ParkedKv> entries = new ArrayDeque<>();   // oldest first

    PrefixCache(KvCacheBudget budget, int maxEntries) {
        this.budget = budget;
        this.maxEntries = maxEntries;
    }

    /** Parks a finished sequence's cache, if the budget has room; the oldest of this batch's go past maxEntries. */
    synchronized void park(PrefixKey key, int[] positions, Decoder.Detached kv) {
        entries.removeIf(parked -> !parked.held());
        while (entries.size() >= maxEntries && !entries.isEmpty()) {
            budget.drop(entries.poll());
        }
        ParkedKv parked = new ParkedKv(key, positions, kv);
        if (budget.park(parked)) {
            entries.add(parked);
        }
    }

    /**
     * The parked cache sharing the longest prefix with a prompt under the same key (the newest of equals). At most
     * all but the prompt's last position are kept: that one is computed again, for the logits of the first new token.
     */
    synchronized Match find(PrefixKey key, int[] prompt) {
        Match best = null;
        for (Iterator<ParkedKv> it = entries.descendingIterator(); it.hasNext(); ) {
            ParkedKv parked = it.next();
            if (!parked.held()) {
                it.remove();
                continue;
            }
            if (!parked.key().equals(key)) {
                continue;
            }
            int keep = Math.min(commonPrefix(parked.positions(), prompt), prompt.length - 1);
            if (keep > 0 && (best == null || keep > best.keep())) {
                best = new Match(parked, keep);
            }
        }
        return best;
    }

    /** Lets every parked cache go (the model is being unloaded). */
    synchronized void clear() {
        entries.forEach(budget::drop);
        entries.clear();
    }

    private static int commonPrefix(int[] a, int[] b) {
        int mismatch = Arrays.mismatch(a, b);
        return mismatch < 0 ? a.length : mismatch;
    }
}

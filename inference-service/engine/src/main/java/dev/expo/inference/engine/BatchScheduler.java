package dev.expo.inference.engine;

import dev.expo.common.ExpoException;
import dev.expo.modeling.Decoder;
import dev.expo.modeling.lora.LoraAdapter;
import dev.expo.modeling.lora.LoraApplication;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Continuous batching for one decoder: every iteration admits waiting sequences into free cache slots, then runs one
 * decode step for every sequence past its prompt together with up to {@code maxPrefillPositions} of the admitted
 * prompts' positions (oldest first; a longer prompt, or a burst of them, over several iterations, as vLLM's chunked
 * prefill and TGI's max-batch-prefill-tokens do), in one forward call when the decoder computes rows independently
 * (the CPU decoder) and in two otherwise. So a long prompt slows the running streams' steps by one chunk at a time
 * rather than holding them up for its whole prefill, and the first of several prompts that arrive together starts
 * streaming without waiting for the others. A sequence leaves the batch the step it finishes, or the step after it is
 * cancelled, and its slot is freed. Per-request sampling and adapters live in the sequences: one decode step serves
 * rows with different adapters and scales. A leaving sequence's cache is parked in the {@link PrefixCache} when the
 * decoder allows it, and an admitted one that starts the same way takes it over (or copies the shared part) and
 * prefills only the rest of its prompt.
 */
final class BatchScheduler implements AutoCloseable {

    private static final System.Logger LOG = System.getLogger(BatchScheduler.class.getName());

    private final String name;
    private final Decoder decoder;
    private final Decoder.Cache cache;
    private final int maxQueued;
    private final int maxPrefillPositions;
    private final KvCacheBudget kvCacheBudget;
    private final InferenceMetrics metrics;
    private final PrefixCache prefixes;   // null: off; empty while the decoder's cache cannot hand its rows over
    private final ArrayDeque<Sequence> waiting = new ArrayDeque<>();
    private final ArrayDeque<Sequence> prefilling = new ArrayDeque<>();   // in slots, prompt rows left; oldest first
    private final Sequence[] running;
    private final Thread loop;
    private volatile boolean closed;

    /** {@code kvCacheBudget} (sized by {@code batching.kvCacheBytes()}) is shared by every model's scheduler. */
    BatchScheduler(String name, Decoder decoder, InferenceEngine.Batching batching, KvCacheBudget kvCacheBudget,
                   InferenceMetrics metrics) {
        this.name = name;
        this.decoder = decoder;
        this.cache = decoder.newCache(batching.maxBatch());
        this.maxQueued = batching.maxQueued();
        this.maxPrefillPositions = batching.maxPrefillPositions();
        this.kvCacheBudget = kvCacheBudget;
        this.metrics = metrics;
        this.prefixes = batching.prefixCacheEntries() > 0
                ? new PrefixCache(kvCacheBudget, batching.prefixCacheEntries()) : null;
        this.running = new Sequence[batching.maxBatch()];
        this.loop = Thread.ofPlatform().daemon().name("scheduler-" + name).start(this::run);
    }

    /** Queues a sequence; RESOURCE_EXHAUSTED when the queue is full or it alone needs more cache than there is. */
    synchronized void submit(Sequence sequence) {
        if (closed) {
            throw new ExpoException(ExpoException.Kind.UNAVAILABLE, "model \"" + name + "\" is being unloaded");
        }
        long bytes = kvBytes(sequence);
        if (bytes > kvCacheBudget.capacity()) {
            throw ExpoException.resourceExhausted("a generation of " + sequence.maxPositions() + " positions (prompt "
                    + "and max_new_tokens) needs " + mib(bytes) + " of KV cache on model \"" + name + "\"; the budget "
                    + "of all sequences together is " + mib(kvCacheBudget.capacity()) + " (inference.batching."
                    + "kv-cache-bytes): ask for fewer new tokens or a shorter prompt");
        }
        if (waiting.size() >= maxQueued) {
            throw ExpoException.resourceExhausted("model \"" + name + "\" has " + waiting.size() + " requests waiting "
                    + "and " + runningCount() + " running (limit " + maxQueued + " waiting); retry later");
        }
        waiting.add(sequence);
        notifyAll();
    }

    synchronized int runningCount() {
        int count = 0;
        for (Sequence sequence : running) {
            count += sequence == null ? 0 : 1;
        }
        return count;
    }

    synchronized int waitingCount() {
        return waiting.size();
    }

    /** Slots holding no sequence (every slot frees its cache when its sequence leaves). */
    synchronized int freeSlots() {
        return running.length - runningCount();
    }

    /** Whether a waiting or running sequence applies this adapter. */
    synchronized boolean uses(LoraAdapter adapter) {
        for (Sequence sequence : waiting) {
            if (sequence.adapters.containsKey(adapter)) {
                return true;
            }
        }
        for (Sequence sequence : running) {
            if (sequence != null && sequence.adapters.containsKey(adapter)) {
                return true;
            }
        }
        return false;
    }

    synchronized boolean idle() {
        return waiting.isEmpty() && runningCount() == 0;
    }

    private void run() {
        while (!closed) {
            try {
                List<Sequence> admitted = admit();
                if (admitted == null) {
                    publishBatch();   // sequences cancelled while queued may have left without an iteration of work
                    continue;
                }
                start(admitted);
                if (decoder.rowsIndependent()) {
                    // One call: the running sequences' next tokens ride with the prompt chunk (as vLLM's chunked
                    // prefill batches them), so the weights are read once for both.
                    Rows rows = new Rows();
                    addDecodeRows(rows);
                    addPromptRows(rows);
                    forward(rows);
                } else {
                    // A decoder that pads every slot's rows to the widest would make each decode row cost a chunk.
                    Rows prompts = new Rows();
                    addPromptRows(prompts);
                    forward(prompts);
                    Rows decodes = new Rows();
                    addDecodeRows(decodes);
                    forward(decodes);
                }
                publishBatch();
            } catch (InterruptedException e) {
                return;
            } catch (RuntimeException | Error e) {
                LOG.log(System.Logger.Level.ERROR, "scheduler of " + name + " failed an iteration", e);
                failAll(e instanceof RuntimeException runtime ? runtime
                        : new IllegalStateException(e.getMessage(), e));
            }
        }
    }

    private synchronized void publishBatch() {
        metrics.batch(name, runningCount(), waiting.size());
    }

    /** Waits for work; moves waiting sequences into free slots. Null when there is nothing to do yet. */
    private synchronized List<Sequence> admit() throws InterruptedException {
        while (!closed && waiting.isEmpty() && runningCount() == 0) {
            wait();
        }
        if (closed) {
            return null;
        }
        List<Sequence> admitted = new ArrayList<>();
        for (int slot = 0; slot < running.length && !waiting.isEmpty(); slot++) {
            if (running[slot] != null) {
                continue;
            }
            Sequence sequence = waiting.poll();
            if (sequence.cancelled.get()) {
                sequence.finish(Outputs.FinishReason.CANCELLED);
                slot--;
                continue;
            }
            long bytes = kvBytes(sequence);
            PrefixCache.Match match = prefixes == null ? null
                    : prefixes.find(sequence.prefixKey, sequence.positions(sequence.promptPositions()));
            // A whole cache the sequence continues (its conversation's previous turn) is taken over when it is no
            // bigger than the sequence's own reservation; otherwise the shared part is copied and the cache stays.
            Decoder.Detached reused = match != null && match.whole() && match.parked().bytes() <= bytes
                    ? kvCacheBudget.reserveTakingOver(match.parked(), bytes) : null;
            boolean takeOver = reused != null;
            if (!takeOver) {
                reused = match == null ? null : kvCacheBudget.share(match.parked());
                if (!kvCacheBudget.tryReserve(bytes)) {
                    waiting.addFirst(sequence);   // first in line once running sequences give memory back
                    break;
                }
            }
            sequence.startFrom(reused == null ? null : new Sequence.Reuse(reused, match.keep(), takeOver));
            sequence.kvBytes = bytes;
            sequence.slot = slot;
            running[slot] = sequence;
            admitted.add(sequence);
        }
        if (admitted.isEmpty() && runningCount() == 0) {
            wait(10);   // the memory is held by other models' sequences: look again shortly
            return null;
        }
        return admitted;
    }

    private long kvBytes(Sequence sequence) {
        return KvCacheBudget.bytesFor(sequence.maxPositions(), decoder.config().maxPositions(),
                decoder.kvBytesPerPosition());
    }

    private static String mib(long bytes) {
        return String.format(java.util.Locale.ROOT, "%.1f MiB", bytes / (1024.0 * 1024.0));
    }

    /** Readies the admitted sequences' slots (with the parked positions they reuse) and queues their prompts. */
    private void start(List<Sequence> admitted) {
        for (Sequence sequence : admitted) {
            cache.reset(sequence.slot);
            Sequence.Reuse reuse = sequence.takeReuse();
            if (reuse != null) {
                if (reuse.takeOver()) {
                    cache.attach(sequence.slot, reuse.kv(), reuse.keep());
                } else {
                    cache.attachCopy(sequence.slot, reuse.kv(), reuse.keep());
                }
                metrics.prefixCacheHit(name, reuse.keep());
            }
        }
        synchronized (this) {
            prefilling.addAll(admitted);
        }
    }

    /** The rows of one forward call, each with the sequence it belongs to and whether that sequence samples from it. */
    private static final class Rows {
        final List<float[]> inputs = new ArrayList<>();
        final List<Sequence> owners = new ArrayList<>();
        final List<Boolean> sampled = new ArrayList<>();

        void add(Sequence owner, float[] input, boolean samples) {
            inputs.add(input);
            owners.add(owner);
            sampled.add(samples);
        }
    }

    /**
     * Up to {@code maxPrefillPositions} prompt rows, oldest sequence first; a sequence whose last prompt row is among
     * them samples its first token from it.
     */
    private void addPromptRows(Rows rows) {
        synchronized (this) {
            int budget = maxPrefillPositions;
            while (budget > 0 && !prefilling.isEmpty()) {
                Sequence sequence = prefilling.peek();
                if (sequence.finished() || running[sequence.slot] != sequence) {
                    prefilling.poll();   // cancelled (or failed) while its prompt waited for its turn
                    continue;
                }
                float[][] chunk = sequence.nextPromptRows(budget);
                budget -= chunk.length;
                boolean last = !sequence.prefilling();
                for (int r = 0; r < chunk.length; r++) {
                    rows.add(sequence, chunk[r], last && r == chunk.length - 1);
                }
                if (last) {
                    prefilling.poll();
                }
            }
        }
    }

    /** One row for every running sequence past its prompt (its last token); cancelled ones leave, prefilling or not. */
    private void addDecodeRows(Rows rows) {
        List<Sequence> batch = new ArrayList<>();
        synchronized (this) {
            for (Sequence sequence : running) {
                if (sequence != null) {
                    batch.add(sequence);
                }
            }
        }
        for (Sequence sequence : batch) {
            if (sequence.cancelled.get()) {
                end(sequence, Outputs.FinishReason.CANCELLED);
            } else if (!sequence.prefilling()) {
                rows.add(sequence, decoder.embed(sequence.lastToken()), true);
            }
        }
    }

    /** Runs the rows through the decoder; each sequence that samples takes its token (and leaves if it is done). */
    private void forward(Rows rows) {
        if (rows.inputs.isEmpty()) {
            return;
        }
        int[] slots = rows.owners.stream().mapToInt(sequence -> sequence.slot).toArray();
        boolean[] wanted = new boolean[slots.length];
        for (int r = 0; r < wanted.length; r++) {
            wanted[r] = rows.sampled.get(r);
        }
        float[][] logits = decoder.logits(rows.inputs.toArray(float[][]::new), slots, cache, adapters(rows.owners),
                wanted);
        for (int r = 0; r < wanted.length; r++) {
            if (wanted[r]) {
                end(rows.owners.get(r), rows.owners.get(r).step(logits[r]));
            }
        }
    }

    /** Every adapter used by the rows, each with its scale on its rows and 0 on the others. */
    private static List<LoraApplication> adapters(List<Sequence> rowOwners) {
        Set<LoraAdapter> used = new LinkedHashSet<>();
        for (Sequence sequence : rowOwners) {
            used.addAll(sequence.adapters.keySet());
        }
        List<LoraApplication> applications = new ArrayList<>();
        for (LoraAdapter adapter : used) {
            float[] scales = new float[rowOwners.size()];
            for (int r = 0; r < scales.length; r++) {
                Float scale = rowOwners.get(r).adapters.get(adapter);
                scales[r] = scale == null ? 0f : scale;
            }
            applications.add(new LoraApplication(adapter, scales));
        }
        return applications;
    }

    /** A sequence that is done (a null reason: not done) leaves its slot, then its client hears the end. */
    private void end(Sequence sequence, Outputs.FinishReason reason) {
        if (reason != null) {
            release(sequence);
            sequence.finish(reason);
        }
    }

    /** Frees the slot, its cache parked for reuse when there is a prefix cache (and room for it). */
    private synchronized void release(Sequence sequence) {
        if (sequence.slot >= 0 && running[sequence.slot] == sequence) {
            running[sequence.slot] = null;
            Decoder.Detached kv = prefixes == null ? null : cache.detach(sequence.slot);
            cache.reset(sequence.slot);
            kvCacheBudget.release(sequence.kvBytes);
            sequence.kvBytes = 0;
            if (kv != null && kv.length() > 0) {
                prefixes.park(sequence.prefixKey, sequence.positions(kv.length()), kv);
            }
        }
        notifyAll();
    }

    private void failAll(RuntimeException failure) {
        List<Sequence> victims = new ArrayList<>();
        synchronized (this) {
            prefilling.clear();
            for (int slot = 0; slot < running.length; slot++) {
                if (running[slot] != null) {
                    victims.add(running[slot]);
                    kvCacheBudget.release(running[slot].kvBytes);
                    running[slot].kvBytes = 0;
                    running[slot] = null;
                    cache.reset(slot);
                }
            }
        }
        victims.forEach(v -> v.fail(failure));
    }

    @Override
    public void close() {
        List<Sequence> pending;
        synchronized (this) {
            closed = true;
            pending = new ArrayList<>(waiting);
            waiting.clear();
            notifyAll();
        }
        loop.interrupt();
        try {
            loop.join(5000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        pending.forEach(s -> s.finish(Outputs.FinishReason.CANCELLED));
        failAll(new ExpoException(ExpoException.Kind.UNAVAILABLE, "model \"" + name + "\" was unloaded"));
        if (prefixes != null) {
            prefixes.clear();
        }
    }

    @Override
    public String toString() {
        return "BatchScheduler[" + name + ", running=" + runningCount() + ", waiting=" + waitingCount() + ", slots="
                + Arrays.toString(running) + "]";
    }

    static Map<LoraAdapter, Float> adapterMap(List<LoraApplication> applications) {
        Map<LoraAdapter, Float> map = new LinkedHashMap<>();
        for (LoraApplication application : applications) {
            map.put(application.adapter(), application.rowScales()[0]);
        }
        return map;
    }
}

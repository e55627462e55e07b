package dev.expo.inference.engine;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.expo.common.ExpoException;
import dev.expo.modeling.Decoder;
import dev.expo.modeling.NdArrays;
import dev.expo.modeling.clip.ClipVisionModel;
import dev.expo.modeling.clip.ImageDecoder;
import dev.expo.modeling.clip.RgbImage;
import dev.expo.modeling.lora.LoraAdapter;
import dev.expo.modeling.lora.LoraApplication;
import dev.expo.modeling.multimodal.MultimodalModel;
import dev.expo.modeling.sampling.LogitsProcessors;
import dev.expo.modeling.sampling.SamplingParams;
import dev.expo.modeling.tokenizer.TextTokenizer;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * Scoring, image embeddings and streamed generation over the registry's models. All model work runs on the engine's
 * own threads (never a caller's event loop); requests are checked (model kinds, lengths, images, sampling values)
 * before any of it starts.
 */
public final class InferenceEngine implements AutoCloseable {

    /**
     * How generations are batched: at most maxBatch sequences per decode step, maxQueued waiting per model, at most
     * kvCacheBytes of keys and values held by all running sequences together, up to prefixCacheEntries finished
     * sequences' caches per model kept in what is left of it for requests that start the same way (0: none), and at
     * most maxPrefillPositions prompt positions prefilled between two decode steps.
     */
    public record Batching(int maxBatch, int maxQueued, long kvCacheBytes, int prefixCacheEntries,
                           int maxPrefillPositions) {
        public static final int DEFAULT_PREFIX_CACHE_ENTRIES = 64;
        public static final int DEFAULT_MAX_PREFILL_POSITIONS = 256;

        public Batching {
            if (maxBatch < 1 || maxQueued < 0 || kvCacheBytes <= 0 || prefixCacheEntries < 0
                    || maxPrefillPositions < 1) {
                throw new IllegalArgumentException("invalid inference.batching settings: max-batch-size " + maxBatch
                        + " (at least 1), max-queued " + maxQueued + " (at least 0), kv-cache-bytes " + kvCacheBytes
                        + " (positive), prefix-cache-entries " + prefixCacheEntries + " (at least 0), "
                        + "max-prefill-positions " + maxPrefillPositions + " (at least 1)");
            }
        }

        public Batching(int maxBatch, int maxQueued, long kvCacheBytes, int prefixCacheEntries) {
            this(maxBatch, maxQueued, kvCacheBytes, prefixCacheEntries, DEFAULT_MAX_PREFILL_POSITIONS);
        }

        public Batching(int maxBatch, int maxQueued, long kvCacheBytes) {
            this(maxBatch, maxQueued, kvCacheBytes, DEFAULT_PREFIX_CACHE_ENTRIES);
        }

        /** With the default KV cache budget. */
        public Batching(int maxBatch, int maxQueued) {
            this(maxBatch, maxQueued, halfTheHeap());
        }

        /** The default KV cache budget: half the JVM's heap (the CPU decoder keeps its caches there). */
        public static long halfTheHeap() {
            return Runtime.getRuntime().maxMemory() / 2;
        }
    }

    private final ModelRegistry registry;
    private final InferenceLimits limits;
    private final Batching batching;
    private final KvCacheBudget kvCacheBudget;
    private final InferenceMetrics metrics;
    private final ExecutorService workers;
    private final Set<String> checkedAdapters = java.util.concurrent.ConcurrentHashMap.newKeySet();
    private final Map<Decoder, BatchScheduler> schedulers = new java.util.IdentityHashMap<>();

    public InferenceEngine(ModelRegistry registry, InferenceLimits limits, int workers) {
        this(registry, limits, workers, new Batching(16, 64), InferenceMetrics.NONE);
    }

    public InferenceEngine(ModelRegistry registry, InferenceLimits limits, int workers, Batching batching,
                           InferenceMetrics metrics) {
        this.registry = registry;
        this.limits = limits;
        this.batching = batching;
        this.kvCacheBudget = new KvCacheBudget(batching.kvCacheBytes());
        this.metrics = metrics;
        registry.setInUse(this::inUse);
        registry.setOnUnload(this::closeScheduler);
        this.workers = Executors.newFixedThreadPool(workers, r -> {
            Thread thread = new Thread(r, "inference");
            thread.setDaemon(true);
            return thread;
        });
    }

    public ModelRegistry registry() {
        return registry;
    }

    public InferenceLimits limits() {
        return limits;
    }

    /** A request resolved against a loaded model: input ids, the image, the adapters, the tokenizer. */
    private record Resolved(String modelName, Decoder model, MultimodalModel multimodal, TextTokenizer tokenizer,
                            Set<Integer> eos, long[] ids, RgbImage image, List<LoraApplication> adapters) {

        int imageTokens() {
            return image == null ? 0 : multimodal.imageTokens();
        }

        /** Input rows: the image tokens (if any), then the text's token embeddings. */
        float[][] inputs() {
            float[][] image = this.image == null ? new float[0][] : multimodal.imageRows(this.image);
            float[][] rows = new float[image.length + ids.length][];
            System.arraycopy(image, 0, rows, 0, image.length);
            for (int i = 0; i < ids.length; i++) {
                rows[image.length + i] = model.embed((int) ids[i]);
            }
            return rows;
        }
    }

    private Resolved resolve(ModelRef ref, Prompt prompt) {
        LoadedModel loaded = registry.get(ref.model());
        Decoder model;
        MultimodalModel multimodal = null;
        TextTokenizer tokenizer;
        Set<Integer> eos;
        List<LoraApplication> adapters = new ArrayList<>();
        switch (loaded) {
            case LoadedModel.Language language -> {
                model = language.decoder();
                tokenizer = language.tokenizer();
                eos = language.eosTokenIds();
            }
            case LoadedModel.Multimodal mm -> {
                multimodal = mm.model();
                model = mm.decoder();
                tokenizer = mm.tokenizer();
                eos = mm.eosTokenIds();
                if (multimodal.adapter() != null) {
                    double scale = ref.adapter() == null && ref.adapterScale() != null ? ref.adapterScale() : 1.0;
                    adapters.add(new LoraApplication(multimodal.adapter(), new float[] {(float) scale}));
                }
            }
            default -> throw ExpoException.invalidArgument("model", ref.model(), "is not a language model or a "
                    + "multimodal model");
        }
        if (ref.adapter() != null) {
            LoraAdapter adapter = registry.adapter(ref.adapter()).adapter();
            if (checkedAdapters.add(ref.adapter() + "\u0000" + ref.model())) {
                try {
                    adapter.checkFits(model.config(), ref.adapter());
                } catch (RuntimeException e) {
                    checkedAdapters.remove(ref.adapter() + "\u0000" + ref.model());
                    throw e;
                }
            }
            double scale = ref.adapterScale() == null ? 1.0 : ref.adapterScale();
            adapters.add(new LoraApplication(adapter, new float[] {(float) scale}));
        } else if (ref.adapterScale() != null && adapters.isEmpty()) {
            throw ExpoException.invalidArgument("adapter_scale", ref.adapterScale(), "needs an adapter (or a "
                    + "multimodal model with one)");
        }
        if (ref.adapterScale() != null && !Double.isFinite(ref.adapterScale())) {
            throw ExpoException.invalidArgument("adapter_scale", ref.adapterScale(), "must be finite");
        }
        RgbImage image = null;
        if (prompt.image() != null) {
            if (multimodal == null) {
                throw ExpoException.invalidArgument("image", prompt.image().length + " bytes", "model \""
                        + ref.model() + "\" is a language model; images need a multimodal model");
            }
            if (prompt.image().length > limits.maxImageBytes()) {
                throw ExpoException.invalidArgument("image", prompt.image().length + " bytes", "larger than the "
                        + "limit of " + limits.maxImageBytes() + " bytes");
            }
            image = ImageDecoder.decode(prompt.image(), limits.maxImagePixels());
        }
        long[] ids;
        if (prompt.text() != null) {
            ids = tokenizer.encode(prompt.text(), true);
        } else if (prompt.chat() != null) {
            ids = tokenizer.encodeChat(prompt.chat(), prompt.addGenerationPrompt());
        } else {
            ids = prompt.tokenIds().clone();
            for (long id : ids) {
                checkTokenId("token_ids", id, model, ref.model());
            }
        }
        if (ids.length == 0) {
            throw ExpoException.invalidArgument("prompt", "\"\"", "the prompt encodes to no tokens");
        }
        return new Resolved(ref.model(), model, multimodal, tokenizer, eos, ids, image, adapters);
    }

    /** A token id a request names (in its prompt, or as a stop token): one of the model's logits. */
    private static void checkTokenId(String field, long id, Decoder model, String name) {
        if (id < 0 || id >= model.config().vocabSize()) {
            throw ExpoException.invalidArgument(field, id, "must be in [0, " + model.config().vocabSize()
                    + ") for model \"" + name + "\"");
        }
    }

    /** The prompt, and the prompt plus {@code extra} new tokens, must fit the model's context. */
    private void checkContext(Resolved r, int extra) {
        int positions = r.imageTokens() + r.ids().length + extra;
        int context = r.model().config().maxPositions();
        int prompt = r.imageTokens() + r.ids().length;
        if (prompt > context) {
            throw ExpoException.invalidArgument("prompt", prompt + " positions", "the prompt exceeds the model's "
                    + "context of " + context + " positions");
        }
        if (positions > context) {
            throw ExpoException.invalidArgument("max_new_tokens", extra, "the prompt takes " + prompt + " of the "
                    + "model's " + context + " positions, so at most " + (context - prompt) + " new tokens fit");
        }
    }

    // ------------------------------------------------------------------------------------------------- Score

    /** Log-probabilities of every next input token (the text part), with the top alternatives. */
    public Outputs.ScoreResult score(ModelRef ref, Prompt prompt, int topLogprobs) {
        if (topLogprobs < 0 || topLogprobs > SamplingParams.MAX_TOP_LOGPROBS) {
            throw ExpoException.invalidArgument("top_logprobs", topLogprobs, "must be between 0 and "
                    + SamplingParams.MAX_TOP_LOGPROBS);
        }
        return call(() -> registry.pinned(() -> {
            Resolved r = resolve(ref, prompt);
            checkContext(r, 0);
            float[][] inputs = r.inputs();
            boolean[] wanted = new boolean[inputs.length];
            for (int i = r.imageTokens(); i < inputs.length; i++) {
                wanted[i] = true;
            }
            Decoder.Cache cache = r.model().newCache(1);
            float[][] logits = r.model().logits(inputs, new int[inputs.length], cache, rows(r.adapters(), inputs.length),
                    wanted);
            List<Outputs.PositionScore> positions = new ArrayList<>();
            for (int i = 0; i < r.ids().length; i++) {
                float[] logprobs = LogitsProcessors.logSoftmax(logits[r.imageTokens() + i]);
                boolean last = i == r.ids().length - 1;
                Integer next = last ? null : (int) r.ids()[i + 1];
                positions.add(new Outputs.PositionScore(next, last ? null : logprobs[next], top(logprobs,
                        topLogprobs)));
            }
            return new Outputs.ScoreResult(r.ids(), positions);
        }));
    }

    private static List<Outputs.TokenLogprob> top(float[] logprobs, int k) {
        List<Outputs.TokenLogprob> top = new ArrayList<>();
        for (int[] index : LogitsProcessors.topIndices(logprobs, k)) {
            top.add(new Outputs.TokenLogprob(index[0], logprobs[index[0]], null));
        }
        return top;
    }

    // ------------------------------------------------------------------------------------------------ Reward

    /** Rows of one reward forward pass: bounded, so a large batch does not hold every row's cache at once. */
    private static final int REWARD_ROWS_PER_PASS = 8;

    /**
     * Rewards of texts (BOS added as the tokenizer does, no template), conversations (through the reward model's
     * own chat template) or token ids, from a sequence classifier with one label. Each row is scored alone (no
     * padding), at the position {@code position} picks. An input longer than the model's context is refused, or with
     * {@code truncate} cut to its first context-many tokens (transformers' {@code truncation=True}, right side).
     */
    public List<Outputs.Reward> reward(String modelName, List<Prompt> inputs, Outputs.RewardPosition position) {
        return reward(modelName, inputs, position, false);
    }

    public List<Outputs.Reward> reward(String modelName, List<Prompt> inputs, Outputs.RewardPosition position,
                                       boolean truncate) {
        if (inputs.isEmpty()) {
            throw ExpoException.invalidArgument("inputs", "[]", "give at least one text or conversation to score");
        }
        return call(() -> registry.pinned(() -> {
            if (!(registry.get(modelName) instanceof LoadedModel.Reward reward)) {
                throw ExpoException.invalidArgument("model", modelName, "is not a reward model (a sequence "
                        + "classifier with one label, e.g. LlamaForSequenceClassification)");
            }
            Decoder decoder = reward.decoder();
            List<long[]> rows = new ArrayList<>();
            List<Boolean> truncated = new ArrayList<>();
            for (Prompt prompt : inputs) {
                if (prompt.image() != null) {
                    throw ExpoException.invalidArgument("image", prompt.image().length + " bytes", "a reward model "
                            + "scores text only");
                }
                long[] ids = prompt.text() != null ? reward.tokenizer().encode(prompt.text(), true)
                        : prompt.chat() != null ? reward.tokenizer().encodeChat(prompt.chat(),
                        prompt.addGenerationPrompt()) : prompt.tokenIds().clone();
                for (long id : ids) {
                    checkTokenId("token_ids", id, decoder, modelName);
                }
                if (ids.length == 0) {
                    throw ExpoException.invalidArgument("inputs", "\"\"", "an input encodes to no tokens");
                }
                boolean cut = ids.length > decoder.config().maxPositions();
                if (cut && !truncate) {
                    throw ExpoException.invalidArgument("inputs", ids.length + " tokens", "longer than the model's "
                            + "context of " + decoder.config().maxPositions() + " positions (truncate cuts it)");
                }
                rows.add(cut ? java.util.Arrays.copyOf(ids, decoder.config().maxPositions()) : ids);
                truncated.add(cut);
            }
            List<Outputs.Reward> out = new ArrayList<>();
            for (int from = 0; from < rows.size(); from += REWARD_ROWS_PER_PASS) {
                out.addAll(rewardPass(decoder, rows.subList(from, Math.min(rows.size(), from + REWARD_ROWS_PER_PASS)),
                        reward.padTokenId(), position));
            }
            for (int i = 0; i < out.size(); i++) {
                Outputs.Reward r = out.get(i);
                out.set(i, new Outputs.Reward(r.reward(), r.position(), r.tokens(), truncated.get(i)));
            }
            return out;
        }));
    }

    private static List<Outputs.Reward> rewardPass(Decoder decoder, List<long[]> rows, int padTokenId,
                                                   Outputs.RewardPosition position) {
        int total = rows.stream().mapToInt(r -> r.length).sum();
        float[][] inputs = new float[total][];
        int[] slots = new int[total];
        boolean[] wanted = new boolean[total];
        int[] scored = new int[rows.size()];
        int at = 0;
        for (int r = 0; r < rows.size(); r++) {
            long[] ids = rows.get(r);
            scored[r] = position == Outputs.RewardPosition.LAST_TOKEN ? ids.length - 1 : hfPooledIndex(ids, padTokenId);
            for (int t = 0; t < ids.length; t++) {
                inputs[at + t] = decoder.embed((int) ids[t]);
                slots[at + t] = r;
            }
            wanted[at + scored[r]] = true;
            at += ids.length;
        }
        float[][] scores = decoder.logits(inputs, slots, decoder.newCache(rows.size()), List.of(), wanted);
        List<Outputs.Reward> out = new ArrayList<>();
        at = 0;
        for (int r = 0; r < rows.size(); r++) {
            out.add(new Outputs.Reward(scores[at + scored[r]][0], scored[r], rows.get(r).length, false));
            at += rows.get(r).length;
        }
        return out;
    }

    /**
     * transformers 4.44.2 ({@code LlamaForSequenceClassification.forward}): {@code argmax(ids == pad) - 1} modulo the
     * length, so the token before the first pad id, or the last token when there is none (argmax 0 gives -1). A row
     * whose first token is the pad id is scored at its last token: in HF's padded batch that would be the batch's
     * last position, a padding-dependent accident this does not copy.
     */
    static int hfPooledIndex(long[] ids, int padTokenId) {
        for (int i = 0; i < ids.length; i++) {
            if (ids[i] == padTokenId) {
                return i == 0 ? ids.length - 1 : i - 1;
            }
        }
        return ids.length - 1;
    }

    // ------------------------------------------------------------------------------------------------- Embed

    /**
     * Vision-tower features of one image: transformers' hidden_states[layer] ({@code [tokens, hidden]}, class token
     * first), or the pooled output ({@code [hidden]}).
     */
    public Outputs.Embedding embedImage(String model, byte[] image, Integer layer, boolean pooled) {
        if (image == null || image.length == 0) {
            throw ExpoException.invalidArgument("image", "(empty)", "PNG or JPEG bytes are required");
        }
        if (image.length > limits.maxImageBytes()) {
            throw ExpoException.invalidArgument("image", image.length + " bytes", "larger than the limit of "
                    + limits.maxImageBytes() + " bytes");
        }
        return call(() -> registry.pinned(() -> {
            ClipVisionModel tower = switch (registry.get(model)) {
                case LoadedModel.Vision vision -> vision.tower();
                case LoadedModel.Multimodal mm -> mm.model().visionTower();
                default -> throw ExpoException.invalidArgument("model", model, "is not a vision tower or a "
                        + "multimodal model");
            };
            RgbImage rgb = ImageDecoder.decode(image, limits.maxImagePixels());
            try (NDManager scope = NDManager.newBaseManager()) {
                ClipVisionModel.Output output = tower.forward(scope, List.of(tower.processor().process(rgb)));
                NDArray result = pooled ? output.pooled().get(0)
                        : output.hiddenState(layer == null ? -1 : layer).get(0);
                return new Outputs.Embedding(result.getShape().getShape(), NdArrays.toFloats(result));
            }
        }));
    }

    // ---------------------------------------------------------------------------------------------- Generate

    /** A running generation; cancelling stops it within one decode step. */
    public interface GenerationHandle {
        void cancel();
    }

    /** Bytes of KV cache the running sequences of all models have reserved (see {@link Batching}). */
    public long kvCacheReservedBytes() {
        return kvCacheBudget.reserved();
    }

    public long kvCacheBudgetBytes() {
        return kvCacheBudget.capacity();
    }

    public long kvCacheParkedBytes() {
        return kvCacheBudget.parked();
    }

    /**
     * The sampling defaults of the model a request names (a multimodal model's are its language model's), loading it
     * if need be.
     */
    public GenerationDefaults generationDefaults(ModelRef ref) {
        return call(() -> switch (registry.get(ref.model())) {
            case LoadedModel.Language language -> language.generation();
            case LoadedModel.Multimodal mm -> mm.generation();
            default -> GenerationDefaults.NONE;   // generate refuses such a model, naming it
        });
    }

    /**
     * Queues a generation in its model's batch; the listener gets the deltas and then the end. Bad requests fail
     * here, before anything is queued (RESOURCE_EXHAUSTED when the model's queue is full); failures while generating
     * reach {@link GenerationListener#onError}.
     */
    public GenerationHandle generate(ModelRef ref, Prompt prompt, SamplingParams params,
                                     GenerationListener listener) {
        return generate(ref, prompt, params, false, listener);
    }

    /**
     * As {@link #generate(ModelRef, Prompt, SamplingParams, GenerationListener)}; with {@code clampToContext} a
     * max_new_tokens that does not fit after the prompt stops at the context's end (finish reason length), as a
     * server default should; without, it is INVALID_ARGUMENT, as an explicit request for more than fits should be.
     */
    public GenerationHandle generate(ModelRef ref, Prompt prompt, SamplingParams params, boolean clampToContext,
                                     GenerationListener listener) {
        if (clampToContext && params.maxNewTokens() > limits.maxNewTokens()) {
            params = params.withMaxNewTokens(limits.maxNewTokens());   // a default (a model's) past the server's limit
        }
        if (params.maxNewTokens() > limits.maxNewTokens()) {
            throw ExpoException.invalidArgument("max_new_tokens", params.maxNewTokens(), "must be at most "
                    + limits.maxNewTokens());
        }
        long start = System.nanoTime();
        SamplingParams sampling = params;
        // Queued while its models are pinned: once queued, the busy batch keeps them from eviction.
        Sequence sequence = call(() -> registry.pinned(() -> {
            Resolved r = resolve(ref, prompt);
            checkContext(r, 0);
            if (!clampToContext) {
                checkContext(r, sampling.maxNewTokens());
            }
            // One the model can never produce would never stop anything: most likely another model's id.
            for (int id : sampling.stopTokenIds()) {
                checkTokenId("stop_token_ids", id, r.model(), ref.model());
            }
            float[][] rows = r.inputs();
            Map<LoraAdapter, Float> adapters = BatchScheduler.adapterMap(r.adapters());
            PrefixKey key = r.image() == null ? new PrefixKey(null, null, adapters)
                    : new PrefixKey(r.multimodal(), sha256(prompt.image()), adapters);
            Sequence queued = new Sequence(
                    new Sequence.Model(ref.model(), r.model().config().maxPositions(), r.tokenizer(), r.eos()),
                    new Sequence.Request(rows, r.ids(), key, adapters, sampling), listener, metrics, start);
            scheduler(ref.model()).submit(queued);
            return queued;
        }));
        return () -> sequence.cancelled.set(true);
    }

    private static byte[] sha256(byte[] bytes) {
        try {
            return java.security.MessageDigest.getInstance("SHA-256").digest(bytes);
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException("every Java runtime has SHA-256", e);
        }
    }

    private static Decoder decoderOf(LoadedModel loaded) {
        return switch (loaded) {
            case LoadedModel.Language l -> l.decoder();
            case LoadedModel.Multimodal m -> m.decoder();
            default -> null;
        };
    }

    /** The batch of the model's decoder (a multimodal model shares its language model's, named after it). */
    private BatchScheduler scheduler(String model) {
        LoadedModel loaded = registry.get(model);
        Decoder decoder = decoderOf(loaded);
        if (decoder == null) {
            throw ExpoException.invalidArgument("model", model, "cannot generate");
        }
        String name = loaded instanceof LoadedModel.Multimodal mm ? mm.languageModel() : model;
        synchronized (schedulers) {
            return schedulers.computeIfAbsent(decoder, d -> new BatchScheduler(name, d, batching, kvCacheBudget,
                    metrics));
        }
    }

    /**
     * Busy models are never evicted: a decoder with generations, an adapter a generation applies. Called under the
     * registry's lock, so nothing may call the registry while holding {@code schedulers}.
     */
    private boolean inUse(LoadedModel model) {
        synchronized (schedulers) {
            return switch (model) {
                case LoadedModel.Language l -> schedulers.containsKey(l.decoder()) && !schedulers.get(l.decoder()).idle();
                case LoadedModel.Multimodal m -> schedulers.containsKey(m.decoder())
                        && !schedulers.get(m.decoder()).idle();
                case LoadedModel.Adapter a -> schedulers.values().stream().anyMatch(s -> s.uses(a.adapter()));
                case LoadedModel.Vision v -> false;
                case LoadedModel.Reward r -> false;   // scored under the registry's pin, never batched
            };
        }
    }

    /** Running and waiting generations and free slots of a model's batch. */
    public record BatchState(int running, int waiting, int freeSlots) {
    }

    public BatchState batchState(String model) {
        if (!registry.isLoaded(model)) {
            return new BatchState(0, 0, batching.maxBatch());
        }
        Decoder decoder = decoderOf(registry.get(model));
        BatchScheduler scheduler;
        synchronized (schedulers) {
            scheduler = decoder == null ? null : schedulers.get(decoder);
        }
        return scheduler == null ? new BatchState(0, 0, batching.maxBatch())
                : new BatchState(scheduler.runningCount(), scheduler.waitingCount(), scheduler.freeSlots());
    }

    /** Unloads a model unless it is generating or part of a loaded multimodal model (FAILED_PRECONDITION then). */
    public boolean unload(String model) {
        return registry.unload(model);
    }

    /** A language model left memory: its batch (idle, or it could not have been unloaded) goes with it. */
    private void closeScheduler(LoadedModel model) {
        if (model instanceof LoadedModel.Language language) {
            BatchScheduler scheduler;
            synchronized (schedulers) {
                scheduler = schedulers.remove(language.decoder());
            }
            if (scheduler != null) {
                scheduler.close();
            }
        }
    }

    /** A request's adapters (one scale each) for a call of {@code count} rows, all of this request. */
    private static List<LoraApplication> rows(List<LoraApplication> adapters, int count) {
        List<LoraApplication> out = new ArrayList<>();
        for (LoraApplication adapter : adapters) {
            float[] scales = new float[count];
            Arrays.fill(scales, adapter.rowScales()[0]);
            out.add(new LoraApplication(adapter.adapter(), scales));
        }
        return out;
    }

    /** Runs model work on the engine's threads and waits, unwrapping its failure. */
    private <T> T call(Callable<T> work) {
        Future<T> future = workers.submit(work);
        try {
            return future.get();
        } catch (InterruptedException e) {
            future.cancel(true);
            Thread.currentThread().interrupt();
            throw new CancellationException("interrupted");
        } catch (ExecutionException e) {
            if (e.getCause() instanceof RuntimeException runtime) {
                throw runtime;
            }
            throw new IllegalStateException(e.getCause());
        }
    }

    @Override
    public void close() {
        synchronized (schedulers) {
            schedulers.values().forEach(BatchScheduler::close);
            schedulers.clear();
        }
        workers.shutdownNow();
        registry.close();
    }
}

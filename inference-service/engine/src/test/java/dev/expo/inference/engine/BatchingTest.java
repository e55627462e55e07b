package dev.expo.inference.engine;

import dev.expo.common.ExpoException;
import dev.expo.common.store.ModelStore;
import dev.expo.modeling.ModelOptions;
import dev.expo.modeling.sampling.SamplingParams;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.OptionalLong;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Continuous batching: what a request gets does not depend on what it was batched with (greedy, sampled with a seed,
 * with or without adapters, with an image), cancelled streams free their slots, and a full queue says so.
 */
class BatchingTest {

    static Path root;
    static InferenceEngine engine;
    static final Hooks hooks = new Hooks();

    /**
     * Metrics that keep the largest batch seen and run {@link #atFirstToken} at every sequence's first token, on the
     * scheduler's thread outside its lock: a test stops the scheduler there to line requests up deterministically
     * instead of racing it.
     */
    static final class Hooks implements InferenceMetrics {
        final AtomicInteger largestBatch = new AtomicInteger();
        /** The running and waiting counts last published: what a dashboard shows. */
        volatile List<Integer> lastBatch = List.of();
        volatile Runnable atFirstToken = () -> { };

        @Override
        public void firstToken(String model, Duration ttft) {
            atFirstToken.run();
        }

        @Override
        public void batch(String model, int running, int waiting) {
            largestBatch.accumulateAndGet(running, Math::max);
            lastBatch = List.of(running, waiting);
        }
    }

    @BeforeAll
    static void start() throws IOException {
        root = Files.createTempDirectory("expo-batching");
        store(root, "tiny-llama-sft", "tiny-llama-lora", "tiny-clip-vision");
        // No prefix caching: the batched runs repeat the solo runs' prompts, and must prefill them together.
        engine = new InferenceEngine(new ModelRegistry(new ModelStore(root), ModelOptions.cpu()),
                InferenceLimits.defaults(), 1,
                new InferenceEngine.Batching(16, 64, InferenceEngine.Batching.halfTheHeap(), 0), hooks);
    }

    @AfterAll
    static void stop() {
        engine.close();
        ModelStore.deleteTree(root);
    }

    /**
     * Fills a store with fixture models and {@code tiny-vlm}, a multimodal manifest on tiny-llama-sft and
     * tiny-clip-vision (which the models should then include).
     */
    static void store(Path root, String... models) throws IOException {
        Path fixtures = Path.of(System.getProperty("expo.testdata", "../../testdata/fixtures"));
        for (String model : models) {
            TestModels.copyTree(fixtures.resolve(model), root.resolve(model));
        }
        Path vlm = Files.createDirectories(root.resolve("tiny-vlm"));
        Files.copy(fixtures.resolve("ddpo-multimodal/projector.safetensors"), vlm.resolve("projector.safetensors"));
        Files.writeString(vlm.resolve("expo-model.json"), """
                {"language_model": "tiny-llama-sft", "vision_tower": "tiny-clip-vision",
                 "projector": "projector.safetensors"}
                """);
    }

    /** Collects a generation. */
    static final class Collector implements GenerationListener {
        final List<Integer> tokens = new ArrayList<>();
        final StringBuilder text = new StringBuilder();
        final CompletableFuture<Outputs.FinishReason> done = new CompletableFuture<>();
        volatile long firstDeltaAt;
        volatile long finishedAt;

        @Override
        public synchronized void onDelta(String delta, int[] ids, List<Outputs.GeneratedLogprobs> logprobs) {
            if (firstDeltaAt == 0) {
                firstDeltaAt = System.nanoTime();
            }
            text.append(delta);
            for (int id : ids) {
                tokens.add(id);
            }
        }

        @Override
        public void onFinished(Outputs.FinishReason reason, Outputs.Usage usage) {
            finishedAt = System.nanoTime();
            done.complete(reason);
        }

        @Override
        public void onError(RuntimeException failure) {
            done.completeExceptionally(failure);
        }

        List<Integer> await() throws Exception {
            done.get(60, TimeUnit.SECONDS);
            return tokens;
        }
    }

    private record Request(ModelRef ref, Prompt prompt, SamplingParams params) {
    }

    private static SamplingParams params(float temperature, Long seed, int tokens) {
        return SamplingParams.builder().temperature(temperature).topP(0.9f).topK(40).minP(0.05f)
                .repetitionPenalty(1.1f).maxNewTokens(tokens)
                .seed(seed == null ? OptionalLong.empty() : OptionalLong.of(seed)).ignoreEos(true).build();
    }

    private static List<Request> mixedRequests(int count) throws IOException {
        byte[] png = Files.readAllBytes(Path.of(System.getProperty("expo.testdata", "../../testdata/fixtures"))
                .resolve("images/img0_48x40.png"));
        SplittableRandom random = new SplittableRandom(11);
        List<Request> requests = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            long[] ids = randomPrompt(random, 3 + random.nextInt(30));
            ModelRef ref = kind(i);
            Prompt prompt = Prompt.ofIds(ids).withImage(i % 4 == 3 ? png : null);
            SamplingParams params = i % 2 == 0 ? params(0f, null, 12) : params(0.8f, 1000L + i, 12);
            requests.add(new Request(ref, prompt, params));
        }
        return requests;
    }

    /** BOS, then random token ids of the tiny fixtures' vocabulary. */
    static long[] randomPrompt(SplittableRandom random, int length) {
        long[] ids = new long[length];
        ids[0] = 1;
        for (int t = 1; t < length; t++) {
            ids[t] = 3 + random.nextInt(380);
        }
        return ids;
    }

    /** Four kinds of request sharing tiny-llama-sft's batch, by i % 4: plain, LoRA, LoRA at 2.5, image (tiny-vlm). */
    static ModelRef kind(int i) {
        return switch (i % 4) {
            case 0 -> ModelRef.of("tiny-llama-sft");
            case 1 -> new ModelRef("tiny-llama-sft", "tiny-llama-lora", null);
            case 2 -> new ModelRef("tiny-llama-sft", "tiny-llama-lora", 2.5);
            default -> ModelRef.of("tiny-vlm");
        };
    }

    @Test
    void sixteenConcurrentStreamsGetExactlyWhatTheyGetAlone() throws Exception {
        List<Request> requests = mixedRequests(16);
        List<List<Integer>> alone = new ArrayList<>();
        for (Request request : requests) {
            Collector collector = new Collector();
            engine.generate(request.ref(), request.prompt(), request.params(), collector);
            alone.add(collector.await());
        }
        hooks.largestBatch.set(0);
        // The scheduler waits at the first request's first token until all are submitted, so that the test does not
        // depend on out-submitting a 12-token generation.
        CountDownLatch submitted = new CountDownLatch(1);
        hooks.atFirstToken = () -> await(submitted);
        List<Collector> together = new ArrayList<>();
        try {
            for (Request request : requests) {
                Collector collector = new Collector();
                engine.generate(request.ref(), request.prompt(), request.params(), collector);
                together.add(collector);
            }
        } finally {
            hooks.atFirstToken = () -> { };
            submitted.countDown();
        }
        for (int i = 0; i < requests.size(); i++) {
            assertThat(together.get(i).await()).as("request " + i).isEqualTo(alone.get(i));
        }
        // The fifteen that queued meanwhile joined the first in one step: every slot and the memory were free.
        assertThat(hooks.largestBatch.get()).as("requests really shared decode steps").isEqualTo(requests.size());
    }

    @Test
    void aClientThatCannotBeReachedStopsAloneWhileTheOthersGoOn() throws Exception {
        List<Request> requests = mixedRequests(6);
        List<List<Integer>> alone = new ArrayList<>();
        for (Request request : requests) {
            Collector collector = new Collector();
            engine.generate(request.ref(), request.prompt(), request.params(), collector);
            alone.add(collector.await());
        }
        // The first request's client fails its third delta (as a transport whose stream is gone can), while all six
        // share decode steps: held at the first token until all are queued.
        Collector failing = new Collector();
        AtomicInteger deltas = new AtomicInteger();
        GenerationListener breaks = watched(failing, () -> {
            if (deltas.incrementAndGet() == 3) {
                throw new IllegalStateException("stream reset");
            }
        });
        CountDownLatch submitted = new CountDownLatch(1);
        hooks.atFirstToken = () -> await(submitted);
        List<Collector> others = new ArrayList<>();
        try {
            engine.generate(requests.get(0).ref(), requests.get(0).prompt(), requests.get(0).params(), breaks);
            for (Request request : requests.subList(1, requests.size())) {
                Collector collector = new Collector();
                engine.generate(request.ref(), request.prompt(), request.params(), collector);
                others.add(collector);
            }
        } finally {
            hooks.atFirstToken = () -> { };
            submitted.countDown();
        }
        for (int i = 1; i < requests.size(); i++) {
            assertThat(others.get(i - 1).await()).as("request " + i).isEqualTo(alone.get(i));
        }
        assertThat(failing.done.get(30, TimeUnit.SECONDS)).isEqualTo(Outputs.FinishReason.CANCELLED);
        assertThat(failing.tokens).hasSize(2);
    }

    /** An engine on the shared store whose scheduler prefills at most {@code positions} prompt positions a step. */
    private static InferenceEngine chunkedEngine(int positions, InferenceMetrics metrics) {
        return new InferenceEngine(new ModelRegistry(new ModelStore(root), ModelOptions.cpu()),
                InferenceLimits.defaults(), 1, new InferenceEngine.Batching(16, 64,
                InferenceEngine.Batching.halfTheHeap(), 0, positions), metrics);
    }

    @Test
    void promptsPrefilledInChunksGetExactlyWhatTheyGetInOne() throws Exception {
        // Prompts of 3 to 32 tokens (image ones longer) in chunks of 5 positions: split anywhere, image rows included,
        // and prefilled while the earlier ones already decode.
        List<Request> requests = mixedRequests(16);
        try (InferenceEngine chunked = chunkedEngine(5, InferenceMetrics.NONE)) {
            List<Collector> together = new ArrayList<>();
            for (Request request : requests) {
                Collector collector = new Collector();
                chunked.generate(request.ref(), request.prompt(), request.params(), collector);
                together.add(collector);
            }
            for (int i = 0; i < requests.size(); i++) {
                Collector alone = new Collector();
                engine.generate(requests.get(i).ref(), requests.get(i).prompt(), requests.get(i).params(), alone);
                assertThat(together.get(i).await()).as("request " + i).isEqualTo(alone.await());
            }
        }
    }

    @Test
    void aLongPromptIsPrefilledAChunkAtATimeAlongsideTheRunningStreams() throws Exception {
        // The scheduler waits at the running stream's first token until the long prompt is queued: it is admitted
        // the next iteration, whatever the timing.
        CountDownLatch queued = new CountDownLatch(1);
        AtomicInteger firstTokens = new AtomicInteger();
        Hooks holding = new Hooks();
        holding.atFirstToken = () -> {
            if (firstTokens.incrementAndGet() == 1) {
                await(queued);
            }
        };
        try (InferenceEngine chunked = chunkedEngine(4, holding)) {
            Collector running = new Collector();
            AtomicInteger runningAtFirstToken = new AtomicInteger(-1);
            Collector longPrompt = new Collector();
            GenerationListener watching = watched(longPrompt,
                    () -> runningAtFirstToken.compareAndSet(-1, tokens(running)));
            try {
                chunked.generate(ModelRef.of("tiny-llama-sft"), Prompt.ofIds(new long[] {1, 7}),
                        params(0f, null, 200), running);
                chunked.generate(ModelRef.of("tiny-llama-sft"),
                        Prompt.ofIds(randomPrompt(new SplittableRandom(3), 40)), params(0f, null, 3), watching);
            } finally {
                queued.countDown();
            }
            longPrompt.await();
            // The running stream's first token, then ten chunks of 4, each in one call with the running stream's
            // next step (its row comes first): 1 + 10. One prefill of all 40 would have left it at 2.
            assertThat(runningAtFirstToken.get()).isEqualTo(1 + 10);
            assertThat(running.await()).hasSize(200);
        }
    }

    /** Passes everything on to {@code collector}, running {@code beforeDelta} (which may throw) before each delta. */
    private static GenerationListener watched(Collector collector, Runnable beforeDelta) {
        return new GenerationListener() {
            @Override
            public void onDelta(String text, int[] tokenIds, List<Outputs.GeneratedLogprobs> logprobs) {
                beforeDelta.run();
                collector.onDelta(text, tokenIds, logprobs);
            }

            @Override
            public void onFinished(Outputs.FinishReason reason, Outputs.Usage usage) {
                collector.onFinished(reason, usage);
            }

            @Override
            public void onError(RuntimeException failure) {
                collector.onError(failure);
            }
        };
    }

    private static int tokens(Collector collector) {
        synchronized (collector) {
            return collector.tokens.size();
        }
    }

    private static void await(CountDownLatch latch) {
        try {
            latch.await(30, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    @Test
    void cancelledStreamsFreeTheirSlots() throws Exception {
        List<Collector> collectors = new ArrayList<>();
        List<InferenceEngine.GenerationHandle> handles = new ArrayList<>();
        // Lined up deterministically: the scheduler waits at the first request's first token until all 24 are
        // queued, then admits 15 more (16 slots) and waits again at the last of their first tokens until every
        // stream is cancelled. So 16 are cancelled mid-generation and 8 while queued.
        CountDownLatch submitted = new CountDownLatch(1);
        CountDownLatch sixteenRunning = new CountDownLatch(1);
        CountDownLatch cancelled = new CountDownLatch(1);
        AtomicInteger firstTokens = new AtomicInteger();
        hooks.atFirstToken = () -> {
            int n = firstTokens.incrementAndGet();
            if (n == 1) {
                await(submitted);
            } else if (n == 16) {
                sixteenRunning.countDown();
                await(cancelled);
            }
        };
        try {
            for (int i = 0; i < 24; i++) {
                Collector collector = new Collector();
                handles.add(engine.generate(ModelRef.of("tiny-llama-sft"), Prompt.ofIds(new long[] {1, 5 + i}),
                        params(1f, (long) i, 200), collector));
                collectors.add(collector);
            }
            submitted.countDown();
            assertThat(sixteenRunning.await(30, TimeUnit.SECONDS)).isTrue();
            assertThat(engine.batchState("tiny-llama-sft")).isEqualTo(new InferenceEngine.BatchState(16, 8, 0));
            handles.forEach(InferenceEngine.GenerationHandle::cancel);
        } finally {
            hooks.atFirstToken = () -> { };
            submitted.countDown();
            cancelled.countDown();
        }
        for (Collector collector : collectors) {
            assertThat(collector.done.get(30, TimeUnit.SECONDS)).isEqualTo(Outputs.FinishReason.CANCELLED);
        }
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        InferenceEngine.BatchState state;
        do {
            state = engine.batchState("tiny-llama-sft");
            Thread.sleep(10);
        } while ((state.running() > 0 || state.waiting() > 0) && System.nanoTime() < deadline);
        assertThat(state).isEqualTo(new InferenceEngine.BatchState(0, 0, 16));
        // The published gauges too: the eight cancelled while queued leave the queue without an iteration of work.
        while (!hooks.lastBatch.equals(List.of(0, 0)) && System.nanoTime() < deadline) {
            Thread.sleep(10);
        }
        assertThat(hooks.lastBatch).as("running and waiting last published").isEqualTo(List.of(0, 0));
    }

    @Test
    void sequencesWaitForKvCacheRoomAndOneThatCanNeverFitIsRefused() throws Exception {
        Path small = Files.createTempDirectory("expo-kv-budget");
        TestModels.copyTree(root.resolve("tiny-llama-sft"), small.resolve("tiny-llama-sft"));
        dev.expo.modeling.llama.LlamaConfig config = dev.expo.modeling.llama.LlamaConfig.from(
                dev.expo.checkpoint.HfConfig.read(small.resolve("tiny-llama-sft")));
        long perPosition = 2L * config.numLayers() * config.numKvHeads() * config.headDim() * Float.BYTES;
        // Room for one sequence of up to 128 positions at a time (2 prompt + 100 new grow the cache to 128).
        long budget = 128 * perPosition * 3 / 2;
        try (InferenceEngine tight = new InferenceEngine(new ModelRegistry(new ModelStore(small), ModelOptions.cpu()),
                InferenceLimits.defaults(), 1, new InferenceEngine.Batching(16, 64, budget), InferenceMetrics.NONE)) {
            Collector first = new Collector();
            Collector second = new Collector();
            tight.generate(ModelRef.of("tiny-llama-sft"), Prompt.ofIds(new long[] {1, 7}), params(0f, null, 100), first);
            tight.generate(ModelRef.of("tiny-llama-sft"), Prompt.ofIds(new long[] {1, 7}), params(0f, null, 100),
                    second);
            while (!first.done.isDone()) {
                assertThat(tight.batchState("tiny-llama-sft").running()).isLessThanOrEqualTo(1);
                Thread.sleep(2);
            }
            assertThat(second.await()).hasSize(100).isEqualTo(first.await());
            // The second waited for the first's memory: its first token came after the first had finished.
            assertThat(second.firstDeltaAt).isGreaterThan(first.finishedAt);
            assertThatThrownBy(() -> tight.generate(ModelRef.of("tiny-llama-sft"), Prompt.ofIds(new long[] {1, 7}),
                    params(0f, null, 200), new Collector()))
                    .isInstanceOfSatisfying(ExpoException.class,
                            e -> assertThat(e.kind()).isEqualTo(ExpoException.Kind.RESOURCE_EXHAUSTED))
                    .hasMessageContaining("of KV cache").hasMessageContaining("inference.batching.kv-cache-bytes");
            // Everything reserved was given back: the largest sequence that fits still runs.
            Collector last = new Collector();
            tight.generate(ModelRef.of("tiny-llama-sft"), Prompt.ofIds(new long[] {1, 7}), params(0f, null, 126), last);
            assertThat(last.await()).hasSize(126);
        } finally {
            ModelStore.deleteTree(small);
        }
    }

    @Test
    void aFullQueueIsResourceExhausted() throws Exception {
        Path small = Files.createTempDirectory("expo-small-queue");
        TestModels.copyTree(root.resolve("tiny-llama-sft"), small.resolve("tiny-llama-sft"));
        // The scheduler stops at the first request's first token until released, so the queue fills deterministically.
        CountDownLatch release = new CountDownLatch(1);
        Hooks holding = new Hooks();
        holding.atFirstToken = () -> await(release);
        try (InferenceEngine tiny = new InferenceEngine(new ModelRegistry(new ModelStore(small), ModelOptions.cpu()),
                InferenceLimits.defaults(), 1, new InferenceEngine.Batching(2, 2), holding)) {
            List<InferenceEngine.GenerationHandle> handles = new ArrayList<>();
            List<Collector> collectors = new ArrayList<>();
            try {
                for (int i = 0; i < 3; i++) {
                    Collector collector = new Collector();
                    handles.add(tiny.generate(ModelRef.of("tiny-llama-sft"), Prompt.ofIds(new long[] {1, 7}),
                            params(1f, 1L, 250), collector));
                    collectors.add(collector);
                    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
                    while (i == 0 && tiny.batchState("tiny-llama-sft").running() == 0
                            && System.nanoTime() < deadline) {
                        Thread.sleep(1);   // the first is admitted; the scheduler then holds
                    }
                }
                assertThat(tiny.batchState("tiny-llama-sft")).isEqualTo(new InferenceEngine.BatchState(1, 2, 1));
                assertThatThrownBy(() -> tiny.generate(ModelRef.of("tiny-llama-sft"), Prompt.ofIds(new long[] {1, 7}),
                        params(1f, 1L, 5), new Collector()))
                        .isInstanceOfSatisfying(ExpoException.class,
                                e -> assertThat(e.kind()).isEqualTo(ExpoException.Kind.RESOURCE_EXHAUSTED))
                        .hasMessageContaining("2 requests waiting").hasMessageContaining("retry later");
            } finally {
                release.countDown();
                handles.forEach(InferenceEngine.GenerationHandle::cancel);
            }
            for (Collector collector : collectors) {
                assertThat(collector.done.get(30, TimeUnit.SECONDS)).isEqualTo(Outputs.FinishReason.CANCELLED);
            }
        } finally {
            ModelStore.deleteTree(small);
        }
    }
}

package dev.expo.inference.engine;

import dev.expo.common.store.ModelStore;
import dev.expo.modeling.ModelOptions;
import dev.expo.modeling.sampling.SamplingParams;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.stream.LongStream;
import java.util.OptionalLong;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Prefix caching: a request that starts as an earlier one did (the next turn of a conversation, a shared system
 * prompt) takes over that one's keys and values and gets exactly what it gets without them - tokens and logprobs to
 * the bit - and parked caches never keep a sequence from running.
 */
class PrefixCachingTest {

    static Path root;
    static byte[] png;
    static byte[] otherPng;
    static InferenceEngine cached;
    static InferenceEngine fresh;

    @BeforeAll
    static void start() throws IOException {
        root = Files.createTempDirectory("expo-prefix");
        BatchingTest.store(root, "tiny-llama-sft", "tiny-llama-lora", "tiny-clip-vision");
        Path fixtures = Path.of(System.getProperty("expo.testdata", "../../testdata/fixtures"));
        png = Files.readAllBytes(fixtures.resolve("images/img0_48x40.png"));
        otherPng = Files.readAllBytes(fixtures.resolve("images/img1_31x31.png"));
        long heap = InferenceEngine.Batching.halfTheHeap();
        cached = new InferenceEngine(new ModelRegistry(new ModelStore(root), ModelOptions.cpu()),
                InferenceLimits.defaults(), 1, new InferenceEngine.Batching(16, 64, heap, 64), InferenceMetrics.NONE);
        fresh = new InferenceEngine(new ModelRegistry(new ModelStore(root), ModelOptions.cpu()),
                InferenceLimits.defaults(), 1, new InferenceEngine.Batching(16, 64, heap, 0), InferenceMetrics.NONE);
    }

    @AfterAll
    static void stop() {
        cached.close();
        fresh.close();
        ModelStore.deleteTree(root);
    }

    /** A finished generation: tokens, every token's logprob and its alternatives, and the usage. */
    record Result(List<Integer> tokens, List<Outputs.GeneratedLogprobs> logprobs, Outputs.FinishReason reason,
                  Outputs.Usage usage) {
    }

    static final class Collector implements GenerationListener {
        final List<Integer> tokens = new ArrayList<>();
        final List<Outputs.GeneratedLogprobs> logprobs = new ArrayList<>();
        final CompletableFuture<Result> done = new CompletableFuture<>();

        @Override
        public synchronized void onDelta(String delta, int[] ids, List<Outputs.GeneratedLogprobs> lps) {
            for (int id : ids) {
                tokens.add(id);
            }
            logprobs.addAll(lps);
        }

        @Override
        public synchronized void onFinished(Outputs.FinishReason reason, Outputs.Usage usage) {
            done.complete(new Result(List.copyOf(tokens), List.copyOf(logprobs), reason, usage));
        }

        @Override
        public void onError(RuntimeException failure) {
            done.completeExceptionally(failure);
        }
    }

    static Result generate(InferenceEngine engine, ModelRef ref, Prompt prompt, SamplingParams params)
            throws Exception {
        Collector collector = new Collector();
        engine.generate(ref, prompt, params, collector);
        return collector.done.get(60, TimeUnit.SECONDS);
    }

    static SamplingParams params(float temperature, Long seed, int tokens) {
        return SamplingParams.builder().temperature(temperature).topP(0.9f).topK(40).minP(0.05f)
                .repetitionPenalty(1.1f).frequencyPenalty(0.2f).presencePenalty(0.1f).maxNewTokens(tokens)
                .seed(seed == null ? OptionalLong.empty() : OptionalLong.of(seed)).ignoreEos(true).logprobs(true)
                .topLogprobs(3).build();
    }

    static long[] concat(long[] a, List<Integer> b, long... c) {
        return LongStream.concat(LongStream.concat(LongStream.of(a), b.stream().mapToLong(Integer::longValue)),
                LongStream.of(c)).toArray();
    }

    @Test
    void theNextTurnOfAConversationTakesOverItsCacheAndGetsWhatItWouldFromScratch() throws Exception {
        SplittableRandom random = new SplittableRandom(5);
        for (int i = 0; i < 8; i++) {
            long[] first = BatchingTest.randomPrompt(random, 2 + random.nextInt(20));
            ModelRef ref = BatchingTest.kind(i);
            byte[] image = i % 4 == 3 ? png : null;
            SamplingParams params = i % 2 == 0 ? params(0f, null, 5 + i) : params(0.8f, 100L + i, 5 + i);
            Result turn1 = generate(cached, ref, Prompt.ofIds(first).withImage(image), params);
            assertThat(turn1.tokens()).isEqualTo(generate(fresh, ref, Prompt.ofIds(first).withImage(image), params)
                    .tokens());

            long[] second = concat(first, turn1.tokens(), 3 + random.nextInt(380), 3 + random.nextInt(380));
            Result reused = generate(cached, ref, Prompt.ofIds(second).withImage(image), params);
            Result computed = generate(fresh, ref, Prompt.ofIds(second).withImage(image), params);
            assertThat(reused.tokens()).as("request " + i).isEqualTo(computed.tokens());
            assertThat(reused.logprobs()).as("request " + i).isEqualTo(computed.logprobs());
            // Every position the first turn fed the model: its prompt (and image rows) and all but its last token.
            int imageRows = turn1.usage().promptTokens() - first.length;
            assertThat(reused.usage().cachedPromptTokens()).as("request " + i)
                    .isEqualTo(imageRows + first.length + turn1.tokens().size() - 1);
            assertThat(reused.usage().promptTokens()).isEqualTo(computed.usage().promptTokens());
            assertThat(computed.usage().cachedPromptTokens()).isZero();
        }
    }

    @Test
    void aSharedBeginningIsReusedUpToWhereThePromptsPart() throws Exception {
        long[] system = LongStream.rangeClosed(1, 40).map(t -> t == 1 ? 1 : 100 + t).toArray();
        SamplingParams greedy = params(0f, null, 6);
        generate(cached, ModelRef.of("tiny-llama-sft"), Prompt.ofIds(concat(system, List.of(), 7, 8, 9)), greedy);
        long[] other = concat(system, List.of(), 300, 301);
        Result reused = generate(cached, ModelRef.of("tiny-llama-sft"), Prompt.ofIds(other), greedy);
        assertThat(reused.usage().cachedPromptTokens()).isEqualTo(system.length);
        assertThat(reused).usingRecursiveComparison().ignoringFields("usage")
                .isEqualTo(generate(fresh, ModelRef.of("tiny-llama-sft"), Prompt.ofIds(other), greedy));
        // The very same prompt again: everything but its last position, whose logits pick the first token.
        Result again = generate(cached, ModelRef.of("tiny-llama-sft"), Prompt.ofIds(other), greedy);
        assertThat(again.usage().cachedPromptTokens()).isEqualTo(other.length - 1);
        assertThat(again.tokens()).isEqualTo(reused.tokens());
    }

    @Test
    void onlyTheSameAdaptersScalesAndImageShareACache() throws Exception {
        // Starting with 2, which no other test's prompts do: no cache of theirs shares even the first position.
        long[] ids = LongStream.range(0, 30).map(t -> t == 0 ? 2 : 50 + 3 * t).toArray();
        SamplingParams greedy = params(0f, null, 4);
        ModelRef lora = new ModelRef("tiny-llama-sft", "tiny-llama-lora", 1.5);
        generate(cached, lora, Prompt.ofIds(ids), greedy);
        generate(cached, ModelRef.of("tiny-vlm"), Prompt.ofIds(ids).withImage(png), greedy);
        for (var request : List.of(
                new Object[] {ModelRef.of("tiny-llama-sft"), null},
                new Object[] {new ModelRef("tiny-llama-sft", "tiny-llama-lora", 2.0), null},
                new Object[] {ModelRef.of("tiny-vlm"), otherPng})) {
            ModelRef ref = (ModelRef) request[0];
            Prompt prompt = Prompt.ofIds(concat(ids, List.of(), 5)).withImage((byte[]) request[1]);
            Result result = generate(cached, ref, prompt, greedy);
            assertThat(result.usage().cachedPromptTokens()).as(ref + " " + (request[1] != null)).isZero();
            assertThat(result.tokens()).isEqualTo(generate(fresh, ref, prompt, greedy).tokens());
        }
        assertThat(generate(cached, lora, Prompt.ofIds(concat(ids, List.of(), 5)), greedy).usage()
                .cachedPromptTokens()).isEqualTo(ids.length);
    }

    @Test
    void parkedCachesGiveWayToSequencesAndGoWithTheirModel() throws Exception {
        Path small = Files.createTempDirectory("expo-prefix-budget");
        TestModels.copyTree(root.resolve("tiny-llama-sft"), small.resolve("tiny-llama-sft"));
        dev.expo.modeling.llama.LlamaConfig config = dev.expo.modeling.llama.LlamaConfig.from(
                dev.expo.checkpoint.HfConfig.read(small.resolve("tiny-llama-sft")));
        long perPosition = 2L * config.numLayers() * config.numKvHeads() * config.headDim() * Float.BYTES;
        // Room for one sequence of up to 128 positions: a parked one has to go for the next to run.
        long budget = 128 * perPosition * 3 / 2;
        try (InferenceEngine tight = new InferenceEngine(new ModelRegistry(new ModelStore(small), ModelOptions.cpu()),
                InferenceLimits.defaults(), 1, new InferenceEngine.Batching(4, 64, budget, 64),
                InferenceMetrics.NONE)) {
            SamplingParams long100 = params(0f, null, 100);
            generate(tight, ModelRef.of("tiny-llama-sft"), Prompt.ofIds(new long[] {1, 7}), long100);
            assertThat(tight.kvCacheParkedBytes()).isEqualTo(128 * perPosition);
            assertThat(tight.kvCacheReservedBytes()).isZero();
            Result other = generate(tight, ModelRef.of("tiny-llama-sft"), Prompt.ofIds(new long[] {1, 9}), long100);
            assertThat(other.reason()).isEqualTo(Outputs.FinishReason.LENGTH);
            assertThat(other.usage().cachedPromptTokens()).as("shares BOS, copied").isEqualTo(1);
            // There is room for one parked cache: the newest stays, and its conversation continues from all of it.
            assertThat(tight.kvCacheParkedBytes()).isEqualTo(128 * perPosition);
            long[] next = concat(new long[] {1, 9}, other.tokens().subList(0, 10), 4);
            assertThat(generate(tight, ModelRef.of("tiny-llama-sft"), Prompt.ofIds(next), params(0f, null, 3)).usage()
                    .cachedPromptTokens()).isEqualTo(2 + 10);
            // Four short ones at once: each reserves 64 positions, more than the parked cache leaves room for.
            List<Collector> four = new ArrayList<>();
            for (int i = 0; i < 4; i++) {
                Collector collector = new Collector();
                tight.generate(ModelRef.of("tiny-llama-sft"), Prompt.ofIds(new long[] {2, 20 + i}), params(0f, null, 8),
                        collector);
                four.add(collector);
            }
            for (Collector collector : four) {
                assertThat(collector.done.get(60, TimeUnit.SECONDS).reason()).isEqualTo(Outputs.FinishReason.LENGTH);
            }
            assertThat(tight.kvCacheReservedBytes()).isZero();
            assertThat(tight.kvCacheParkedBytes()).isPositive().isLessThanOrEqualTo(budget);
            assertThat(tight.unload("tiny-llama-sft")).isTrue();
            assertThat(tight.kvCacheParkedBytes()).isZero();
        } finally {
            ModelStore.deleteTree(small);
        }
    }
}

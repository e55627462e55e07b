package dev.expo.inference.engine;

import ai.djl.ndarray.NDManager;
import dev.expo.modeling.Decoder;
import dev.expo.modeling.DjlDecoder;
import dev.expo.modeling.ModelOptions;
import dev.expo.modeling.cpu.CpuDecoder;
import dev.expo.modeling.llama.LlamaConfig;
import dev.expo.modeling.llama.LlamaModel;
import dev.expo.modeling.lora.LoraApplication;
import dev.expo.modeling.sampling.SamplingParams;
import dev.expo.modeling.tokenizer.TextTokenizer;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * How an iteration's prompt chunk and decode step reach the decoder: in one call when its rows are computed
 * independently (the CPU decoder), in two when it pads every slot's rows to the widest (the DJL decoder, on GPUs).
 * The tokens are the same either way, and the DJL decoder itself (run here on the CPU) gives the same tokens with
 * prompts split into chunks as whole.
 */
class IterationCallsTest {

    private static final Path MODEL = Path.of(System.getProperty("expo.testdata", "../../testdata/fixtures"),
            "tiny-llama-sft");

    /** The CPU decoder as it is, or claiming to pad; records which calls mix prompt rows with decode rows. */
    private static final class Recording implements Decoder {
        final Decoder decoder;
        final boolean independent;
        final Set<float[]> promptRows = Collections.synchronizedSet(Collections.newSetFromMap(new IdentityHashMap<>()));
        int calls;
        int mixedCalls;

        Recording(Decoder decoder, boolean independent) {
            this.decoder = decoder;
            this.independent = independent;
        }

        @Override
        public boolean rowsIndependent() {
            return independent;
        }

        @Override
        public float[][] logits(float[][] inputs, int[] slots, Cache cache, List<LoraApplication> adapters,
                                boolean[] wanted) {
            long prompt = java.util.Arrays.stream(inputs).filter(promptRows::contains).count();
            calls++;
            mixedCalls += prompt > 0 && prompt < inputs.length ? 1 : 0;
            return decoder.logits(inputs, slots, cache, adapters, wanted);
        }

        @Override
        public LlamaConfig config() {
            return decoder.config();
        }

        @Override
        public float[] embed(int token) {
            return decoder.embed(token);
        }

        @Override
        public Cache newCache(int slots) {
            return decoder.newCache(slots);
        }

        @Override
        public void close() {
        }
    }

    @Test
    void aDecoderThatPadsGetsChunksAndStepsInSeparateCallsAndTheSameTokens() throws Exception {
        try (CpuDecoder cpu = CpuDecoder.load(MODEL)) {
            Recording independent = new Recording(cpu, true);
            Recording padding = new Recording(cpu, false);
            List<List<Integer>> oneCall = generate(independent);
            List<List<Integer>> twoCalls = generate(padding);
            assertThat(twoCalls).isEqualTo(oneCall);
            assertThat(independent.mixedCalls).as("chunks went with decode steps").isPositive();
            assertThat(padding.mixedCalls).as("a padding decoder never gets both in one call").isZero();
            assertThat(padding.calls).isGreaterThan(independent.calls);
        }
    }

    @Test
    void theDjlDecoderGetsTheSameTokensWithPromptsInChunksAsInOneCall() throws Exception {
        // The GPU path's scheduling, on the CPU: rows padded per slot, prompts split across calls and the cache.
        try (NDManager manager = NDManager.newBaseManager();
             DjlDecoder djl = new DjlDecoder(LlamaModel.load(MODEL, manager, ModelOptions.cpu()))) {
            Recording chunked = new Recording(djl, djl.rowsIndependent());
            List<List<Integer>> inChunks = generate(chunked, 5);
            Recording whole = new Recording(djl, djl.rowsIndependent());
            assertThat(generate(whole, 1000)).isEqualTo(inChunks);
            assertThat(chunked.mixedCalls + whole.mixedCalls).isZero();
            try (CpuDecoder cpu = CpuDecoder.load(MODEL)) {
                assertThat(generate(new Recording(cpu, true), 5)).as("the CPU decoder's tokens").isEqualTo(inChunks);
            }
        }
    }

    private static List<List<Integer>> generate(Recording decoder) throws Exception {
        return generate(decoder, 5);
    }

    /** Six prompts of 3 to 30 tokens, prefilled {@code chunk} positions an iteration while the first ones decode. */
    private static List<List<Integer>> generate(Recording decoder, int chunk) throws Exception {
        TextTokenizer tokenizer = TextTokenizer.load(MODEL);
        SamplingParams greedy = SamplingParams.builder().maxNewTokens(16).ignoreEos(true).build();
        SplittableRandom random = new SplittableRandom(11);
        List<BatchingTest.Collector> collectors = new ArrayList<>();
        try (BatchScheduler scheduler = new BatchScheduler("tiny-llama-sft", decoder,
                new InferenceEngine.Batching(8, 16, 1L << 30, 0, chunk), new KvCacheBudget(1L << 30),
                InferenceMetrics.NONE)) {
            // All queued before the scheduler admits any, so that every run meets the same schedule.
            synchronized (scheduler) {
                for (int length : new int[] {3, 30, 7, 12, 4, 21}) {
                    long[] ids = BatchingTest.randomPrompt(random, length);
                    float[][] rows = new float[length][];
                    for (int t = 0; t < length; t++) {
                        rows[t] = decoder.embed((int) ids[t]);
                        decoder.promptRows.add(rows[t]);
                    }
                    BatchingTest.Collector collector = new BatchingTest.Collector();
                    collectors.add(collector);
                    scheduler.submit(new Sequence(
                            new Sequence.Model("tiny-llama-sft", decoder.config().maxPositions(), tokenizer, Set.of()),
                            new Sequence.Request(rows, ids, new PrefixKey(null, null, Map.of()), Map.of(), greedy),
                            collector, InferenceMetrics.NONE, System.nanoTime()));
                }
            }
            List<List<Integer>> tokens = new ArrayList<>();
            for (BatchingTest.Collector collector : collectors) {
                tokens.add(collector.await());
            }
            return tokens;
        }
    }
}

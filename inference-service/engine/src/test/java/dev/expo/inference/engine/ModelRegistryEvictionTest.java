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
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The memory budget: loading past it unloads the least recently used idle models first; models in use, pinned by a
 * request, or part of a loaded multimodal model stay; when nothing can go the load is refused, and nothing breaks.
 */
class ModelRegistryEvictionTest {

    static Path root;
    static long sft;
    static long dpo;
    static long mistral;
    static long vlmParts;

    @BeforeAll
    static void store() throws IOException {
        root = Files.createTempDirectory("expo-eviction");
        BatchingTest.store(root, "tiny-llama-sft", "tiny-llama-dpo", "tiny-mistral", "tiny-clip-vision");
        // What each model costs, measured by a registry without a budget.
        try (ModelRegistry unlimited = registry(Long.MAX_VALUE)) {
            sft = bytesOf(unlimited, "tiny-llama-sft");
            dpo = bytesOf(unlimited, "tiny-llama-dpo");
            mistral = bytesOf(unlimited, "tiny-mistral");
            long before = unlimited.loadedBytes();
            unlimited.get("tiny-vlm");
            vlmParts = unlimited.loadedBytes() - before + sft;
        }
        assertThat(List.of(sft, dpo, mistral)).allMatch(bytes -> bytes > 0);
    }

    private static long bytesOf(ModelRegistry registry, String name) {
        long before = registry.loadedBytes();
        registry.get(name);
        return registry.loadedBytes() - before;
    }

    static ModelRegistry registry(long budget) {
        return new ModelRegistry(new ModelStore(root), ModelOptions.cpu(), budget);
    }

    @AfterAll
    static void clean() {
        ModelStore.deleteTree(root);
    }

    @Test
    void theLeastRecentlyUsedModelGoesFirst() {
        try (ModelRegistry registry = registry(sft + dpo + mistral - 1)) {
            registry.get("tiny-llama-sft");
            registry.get("tiny-llama-dpo");
            registry.get("tiny-llama-sft");
            registry.get("tiny-mistral");
            assertThat(registry.isLoaded("tiny-llama-dpo")).isFalse();
            assertThat(registry.isLoaded("tiny-llama-sft")).isTrue();
            assertThat(registry.isLoaded("tiny-mistral")).isTrue();
            assertThat(registry.loadedBytes()).isLessThanOrEqualTo(sft + dpo + mistral - 1);
        }
    }

    @Test
    void busyOrPinnedModelsStayAndTheLoadIsRefused() {
        try (ModelRegistry registry = registry(Math.max(sft, dpo))) {
            registry.setInUse(model -> model.name().equals("tiny-llama-sft"));
            registry.get("tiny-llama-sft");
            assertThatThrownBy(() -> registry.get("tiny-llama-dpo")).isInstanceOfSatisfying(ExpoException.class,
                    e -> {
                        assertThat(e.kind()).isEqualTo(ExpoException.Kind.RESOURCE_EXHAUSTED);
                        assertThat(e.getMessage()).contains("tiny-llama-dpo", "budget");
                    });
            assertThat(registry.isLoaded("tiny-llama-sft")).isTrue();
            assertThat(registry.isLoaded("tiny-llama-dpo")).isFalse();
            assertThatThrownBy(() -> registry.unload("tiny-llama-sft")).isInstanceOfSatisfying(ExpoException.class,
                    e -> assertThat(e.kind()).isEqualTo(ExpoException.Kind.FAILED_PRECONDITION));

            registry.setInUse(model -> false);
            registry.pinned(() -> {
                registry.get("tiny-llama-sft");
                assertThatThrownBy(() -> registry.get("tiny-llama-dpo")).isInstanceOf(ExpoException.class);
                return null;
            });
            // Unpinned, it may go.
            registry.get("tiny-llama-dpo");
            assertThat(registry.isLoaded("tiny-llama-sft")).isFalse();
        }
    }

    @Test
    void aManifestKeepsItsPartsAndGoesBeforeThem() {
        try (ModelRegistry registry = registry(Math.max(vlmParts, dpo + 1))) {
            registry.get("tiny-vlm");
            assertThat(registry.isLoaded("tiny-llama-sft")).isTrue();
            assertThat(registry.isLoaded("tiny-clip-vision")).isTrue();
            registry.get("tiny-llama-dpo");
            assertThat(registry.isLoaded("tiny-vlm")).isFalse();
            assertThat(registry.isLoaded("tiny-llama-dpo")).isTrue();
            assertThat(registry.loadedBytes()).isLessThanOrEqualTo(Math.max(vlmParts, dpo + 1));
        }
    }

    @Test
    void anEvictedModelsBatchGoesWithItAndComesBackOnUse() throws Exception {
        SamplingParams greedy = SamplingParams.builder().maxNewTokens(8).ignoreEos(true).build();
        try (InferenceEngine engine = new InferenceEngine(registry(Math.max(sft, dpo)), InferenceLimits.defaults(),
                1)) {
            List<Integer> first = generate(engine, "tiny-llama-sft", greedy);
            generate(engine, "tiny-llama-dpo", greedy);
            assertThat(engine.registry().isLoaded("tiny-llama-sft")).isFalse();
            assertThat(generate(engine, "tiny-llama-sft", greedy)).isEqualTo(first);
            assertThat(engine.batchState("tiny-llama-sft")).isEqualTo(new InferenceEngine.BatchState(0, 0, 16));
        }
    }

    private static List<Integer> generate(InferenceEngine engine, String model, SamplingParams params)
            throws Exception {
        BatchingTest.Collector collector = new BatchingTest.Collector();
        engine.generate(ModelRef.of(model), Prompt.ofIds(new long[] {1, 20, 30}), params, collector);
        return collector.await();
    }

    @Test
    void theKvCacheDtypeReachesTheCpuDecoderAndBadValuesAreRefused() {
        try (ModelRegistry registry = new ModelRegistry(new ModelStore(root),
                ModelOptions.cpu().withKvCache("bfloat16"))) {
            LoadedModel.Language model = (LoadedModel.Language) registry.get("tiny-llama-sft");
            assertThat(((dev.expo.modeling.cpu.CpuKvCache) model.decoder().newCache(1)).dtype())
                    .isEqualTo(dev.expo.checkpoint.DType.BF16);
        }
        assertThat(ModelOptions.cpu().kvCacheDtype()).isEqualTo(dev.expo.checkpoint.DType.F32);
        assertThatThrownBy(() -> ModelOptions.cpu().withKvCache("fp8"))
                .hasMessageContaining("kv-cache-dtype must be float32 or bfloat16, not fp8");
        assertThatThrownBy(() -> new ModelOptions(ai.djl.Device.gpu(), ai.djl.ndarray.types.DataType.FLOAT16,
                dev.expo.checkpoint.DType.BF16, dev.expo.modeling.cpu.MatrixKernels.JAVA))
                .hasMessageContaining("a bfloat16 KV cache is the CPU decoder's");
    }
}

package dev.expo.extrapolation.engine;

import dev.expo.checkpoint.Checkpoint;
import dev.expo.checkpoint.DType;
import dev.expo.checkpoint.Dtypes;
import dev.expo.checkpoint.ShardPlan;
import dev.expo.checkpoint.TensorInfo;
import dev.expo.common.store.ModelStore;
import dev.expo.extrapolation.engine.kernel.ExtrapolationKernel;
import dev.expo.extrapolation.engine.kernel.ScalarKernel;
import dev.expo.extrapolation.engine.schedule.AlphaSchedule;
import dev.expo.extrapolation.engine.schedule.ScheduleYaml;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Bit-exact against the Hugging Face reference: tiny-llama-expo/uniform (alpha 12) and layerwise (5/10/15 over
 * thirds, 10 outside the layers) were made by PyTorch from the same bf16 inputs (see the fixtures' README).
 */
class GoldenExtrapolationTest {

    @TempDir
    Path root;

    private ModelStore store() {
        return TestStore.with(root, "sft=tiny-llama-sft", "dpo=tiny-llama-dpo", "dpo-sharded=tiny-llama-dpo-sharded");
    }

    private static Extrapolator extrapolator(ModelStore store, ExtrapolationKernel kernel, int chunk) {
        return new Extrapolator(store, kernel, new Extrapolator.Settings(2, chunk, 64 << 10));
    }

    private static ExtrapolationResult run(ModelStore store, Extrapolator extrapolator, ExtrapolationSpec spec,
                                           String output) {
        try (ExtrapolationPlan plan = new Planner(store).plan(spec, 0)) {
            return extrapolator.run(plan, output, false, p -> { }, () -> false);
        }
    }

    @ParameterizedTest(name = "chunk of {0} elements")
    @ValueSource(ints = {1024, 5000, 1 << 21})
    void uniformAlpha12MatchesTheReferenceFileByteForByte(int chunk) throws IOException {
        ModelStore store = store();
        ExtrapolationResult result = run(store, extrapolator(store, ExtrapolationKernel.best(), chunk),
                new ExtrapolationSpec("sft", "dpo", AlphaSchedule.uniform(12), null), "expo");
        assertThat(result.tensorCount()).isEqualTo(57);
        assertThat(result.shardCount()).isEqualTo(1);
        assertThat(result.outputDtype()).isEqualTo(DType.BF16);
        assertThat(result.nonFiniteTensors()).isEmpty();
        assertSameFolder(TestStore.fixture("tiny-llama-expo/uniform"), root.resolve("expo"));
        assertThat(TestStore.stagingEntries(store)).isZero();
    }

    @Test
    void layerwiseThirdsMatchTheReference() throws IOException {
        ModelStore store = store();
        run(store, extrapolator(store, ExtrapolationKernel.best(), 4096),
                new ExtrapolationSpec("sft", "dpo", ScheduleYaml.parse("layer_groups: [5, 10, 15]"), null), "expo-lw");
        assertSameFolder(TestStore.fixture("tiny-llama-expo/layerwise"), root.resolve("expo-lw"));
    }

    @Test
    void scalarKernelMatchesTheReferenceToo() throws IOException {
        ModelStore store = store();
        run(store, extrapolator(store, new ScalarKernel(), 3000),
                new ExtrapolationSpec("sft", "dpo", AlphaSchedule.uniform(12), null), "expo-scalar");
        assertThat(Files.mismatch(TestStore.fixture("tiny-llama-expo/uniform/model.safetensors"),
                root.resolve("expo-scalar/model.safetensors"))).isEqualTo(-1L);
    }

    @Test
    void shardedInShardedOut() throws IOException {
        ModelStore store = store();
        ExtrapolationResult result = run(store, extrapolator(store, ExtrapolationKernel.best(), 8192),
                new ExtrapolationSpec("sft", "dpo-sharded", AlphaSchedule.uniform(12), null), "expo-sharded");
        Path out = root.resolve("expo-sharded");
        assertThat(result.shardCount()).isEqualTo(2);
        // The aligned model's layout is kept: same shard files, same index.
        assertThat(Files.readString(out.resolve(ShardPlan.INDEX_FILE)))
                .isEqualTo(Files.readString(TestStore.fixture("tiny-llama-dpo-sharded/" + ShardPlan.INDEX_FILE)));
        assertThat(Files.exists(out.resolve(ShardPlan.SINGLE_FILE))).isFalse();
        try (Checkpoint sharded = Checkpoint.open(out);
             Checkpoint golden = Checkpoint.open(TestStore.fixture("tiny-llama-expo/uniform"))) {
            assertThat(sharded.isSharded()).isTrue();
            for (TensorInfo tensor : golden.tensors()) {
                assertThat(sharded.tensor(tensor.name()).bytes().mismatch(golden.tensor(tensor.name()).bytes()))
                        .as(tensor.name()).isEqualTo(-1L);
            }
        }
    }

    @Test
    void maxShardSizeReshardsTheOutput() throws IOException {
        ModelStore store = store();
        ExtrapolationResult result;
        try (ExtrapolationPlan plan = new Planner(store).plan(
                new ExtrapolationSpec("sft", "dpo", AlphaSchedule.uniform(12), null), 200_000)) {
            result = extrapolator(store, ExtrapolationKernel.best(), 1 << 20).run(plan, "resharded", false,
                    p -> { }, () -> false);
        }
        assertThat(result.shardCount()).isGreaterThan(3);
        try (Checkpoint resharded = Checkpoint.open(root.resolve("resharded"));
             Checkpoint golden = Checkpoint.open(TestStore.fixture("tiny-llama-expo/uniform"))) {
            for (TensorInfo tensor : golden.tensors()) {
                assertThat(resharded.tensor(tensor.name()).bytes().mismatch(golden.tensor(tensor.name()).bytes()))
                        .isEqualTo(-1L);
            }
        }
    }

    @Test
    void alphaZeroCopiesTheAlignedTensorsAndF32OutputUpdatesTheConfig() throws IOException {
        ModelStore store = store();
        AlphaSchedule schedule = ScheduleYaml.parse("""
                alpha: 12
                rules:
                  - glob: "*embed_tokens*"
                    alpha: 0
                """);
        run(store, extrapolator(store, ExtrapolationKernel.best(), 4096),
                new ExtrapolationSpec("sft", "dpo", schedule, DType.F32), "expo-f32");
        Path out = root.resolve("expo-f32");
        assertThat(Files.readString(out.resolve("config.json"))).contains("\"torch_dtype\": \"float32\"");
        try (Checkpoint f32 = Checkpoint.open(out);
             Checkpoint dpo = Checkpoint.open(root.resolve("dpo"));
             Checkpoint golden = Checkpoint.open(TestStore.fixture("tiny-llama-expo/uniform"))) {
            assertThat(f32.info("model.embed_tokens.weight").dtype()).isEqualTo(DType.F32);
            assertThat(f32.tensor("model.embed_tokens.weight").toFloats())
                    .containsExactly(dpo.tensor("model.embed_tokens.weight").toFloats());
            // Other tensors: the same float32 theta, not yet rounded; rounding it gives the bf16 golden.
            float[] theta = f32.tensor("lm_head.weight").toFloats();
            float[] bf16 = golden.tensor("lm_head.weight").toFloats();
            for (int i = 0; i < theta.length; i++) {
                assertThat(Dtypes.bf16ToFloat(Dtypes.floatToBf16(theta[i]))).isEqualTo(bf16[i]);
            }
        }
    }

    @Test
    void overflowIsReportedAsNonFinitePerTensor() throws IOException {
        ModelStore store = store();
        // Weights near the top of the bf16 range: aligned - base overflows float32 to infinity, and inf - inf is NaN.
        writePair(root, new float[] {3e38f, -3e38f, 1f, Float.POSITIVE_INFINITY},
                new float[] {-3e38f, 3e38f, 1f, Float.POSITIVE_INFINITY});
        ExtrapolationResult result = run(store, extrapolator(store, ExtrapolationKernel.best(), 4096),
                new ExtrapolationSpec("huge-base", "huge-aligned", AlphaSchedule.uniform(2), null), "overflow");
        assertThat(result.nonFiniteTensors()).singleElement().satisfies(t -> {
            assertThat(t.name()).isEqualTo("model.layers.0.w.weight");
            assertThat(t.infCount()).isEqualTo(2);
            assertThat(t.nanCount()).isEqualTo(1);
        });
    }

    private static void writePair(Path root, float[] aligned, float[] base) throws IOException {
        for (String name : List.of("huge-base", "huge-aligned")) {
            Path dir = Files.createDirectories(root.resolve(name));
            Files.writeString(dir.resolve("config.json"),
                    "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", \"num_hidden_layers\": 1}");
            float[] values = name.equals("huge-base") ? base : aligned;
            dev.expo.checkpoint.SafetensorsWriter.write(dir.resolve("model.safetensors"), List.of(
                    dev.expo.checkpoint.Tensor.fromFloats("model.layers.0.w.weight", DType.BF16, new long[] {4}, values),
                    dev.expo.checkpoint.Tensor.fromFloats("model.norm.weight", DType.BF16, new long[] {2},
                            new float[] {1f, 2f})));
        }
    }

    private static void assertSameFolder(Path expected, Path actual) throws IOException {
        List<String> expectedFiles = names(expected);
        List<String> actualFiles = names(actual);
        actualFiles.remove(Extrapolator.PROVENANCE_FILE);
        assertThat(actualFiles).containsExactlyInAnyOrderElementsOf(expectedFiles);
        for (String name : expectedFiles) {
            assertThat(Files.mismatch(expected.resolve(name), actual.resolve(name))).as(name).isEqualTo(-1L);
        }
    }

    private static List<String> names(Path dir) throws IOException {
        try (Stream<Path> files = Files.list(dir)) {
            return new ArrayList<>(files.map(p -> p.getFileName().toString()).toList());
        }
    }
}

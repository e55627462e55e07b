package dev.expo.extrapolation.engine;

import dev.expo.checkpoint.DType;
import dev.expo.checkpoint.SafetensorsWriter;
import dev.expo.checkpoint.Tensor;
import dev.expo.common.ExpoException;
import dev.expo.common.store.ModelStore;
import dev.expo.extrapolation.engine.kernel.ExtrapolationKernel;
import dev.expo.extrapolation.engine.schedule.AlphaSchedule;
import dev.expo.extrapolation.engine.schedule.LayerSchedule;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.concurrent.atomic.AtomicInteger;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Mismatched or malformed inputs fail clearly and leave nothing behind; cancelled jobs leave nothing behind. */
class ValidationAndSafetyTest {

    @TempDir
    Path root;

    private ModelStore store;
    private Planner planner;
    private Extrapolator extrapolator;

    private void setUp(String... fixtures) {
        store = TestStore.with(root, fixtures);
        planner = new Planner(store);
        extrapolator = new Extrapolator(store, ExtrapolationKernel.best(), new Extrapolator.Settings(2, 1024, 1 << 20));
    }

    private void extrapolate(String base, String aligned, String output) {
        ExtrapolationSpec spec = new ExtrapolationSpec(base, aligned, AlphaSchedule.uniform(12), null);
        extrapolator.checkOutput(spec, output, false);
        try (ExtrapolationPlan plan = planner.plan(spec, 0)) {
            extrapolator.run(plan, output, false, p -> { }, () -> false);
        }
    }

    private static ExpoException.Kind kindOf(Throwable t) {
        return ((ExpoException) t).kind();
    }

    /** A tiny llama-like model folder with the given tensors (name -> shape) and dtype. */
    private void writeModel(String name, String architecture, DType dtype, List<String> tensorNames, long[] shape)
            throws IOException {
        Path dir = Files.createDirectories(root.resolve(name));
        Files.writeString(dir.resolve("config.json"), "{\"architectures\": [\"" + architecture
                + "\"], \"model_type\": \"llama\", \"num_hidden_layers\": 2, \"torch_dtype\": \"bfloat16\"}");
        List<Tensor> tensors = new ArrayList<>();
        for (String tensor : tensorNames) {
            float[] values = new float[(int) (shape[0] * shape[1])];
            java.util.Arrays.fill(values, 0.5f);
            tensors.add(Tensor.fromFloats(tensor, dtype, shape, values));
        }
        SafetensorsWriter.write(dir.resolve("model.safetensors"), tensors);
    }

    @Test
    void differentArchitecturesAreAFailedPrecondition() {
        setUp("sft=tiny-llama-sft", "mistral=tiny-mistral");
        assertThatThrownBy(() -> extrapolate("sft", "mistral", "out"))
                .satisfies(e -> assertThat(kindOf(e)).isEqualTo(ExpoException.Kind.FAILED_PRECONDITION))
                .hasMessageContaining("LlamaForCausalLM").hasMessageContaining("MistralForCausalLM");
        assertThat(store.list()).containsExactlyInAnyOrder("sft", "mistral");
    }

    @Test
    void differentTensorsAreNamed() throws IOException {
        setUp();
        List<String> names = List.of("model.layers.0.a.weight", "model.layers.1.a.weight", "lm_head.weight");
        writeModel("a", "LlamaForCausalLM", DType.BF16, names, new long[] {4, 4});
        writeModel("b", "LlamaForCausalLM", DType.BF16, List.of("model.layers.0.a.weight", "model.layers.1.a.weight",
                "model.norm.weight"), new long[] {4, 4});
        writeModel("c", "LlamaForCausalLM", DType.BF16, names, new long[] {4, 8});
        writeModel("d", "LlamaForCausalLM", DType.F16, names, new long[] {4, 4});
        assertThatThrownBy(() -> extrapolate("a", "b", "out"))
                .satisfies(e -> assertThat(kindOf(e)).isEqualTo(ExpoException.Kind.FAILED_PRECONDITION))
                .hasMessageContaining("only in the base: lm_head.weight")
                .hasMessageContaining("only in the aligned model: model.norm.weight");
        assertThatThrownBy(() -> extrapolate("a", "c", "out"))
                .hasMessageContaining("model.layers.0.a.weight has shape [4, 4] in the base but [4, 8]");
        assertThatThrownBy(() -> extrapolate("a", "d", "out"))
                .hasMessageContaining("is BF16 in the base but F16");
        assertThat(TestStore.stagingEntries(store)).isZero();
        assertThat(store.exists("out")).isFalse();
    }

    @Test
    void malformedWeightsAreInvalidArgumentsAndLeaveNothingBehind() throws IOException {
        setUp("sft=tiny-llama-sft", "dpo=tiny-llama-dpo");
        Path weights = root.resolve("dpo/model.safetensors");
        byte[] bytes = Files.readAllBytes(weights);
        Files.write(weights, java.util.Arrays.copyOf(bytes, bytes.length - 100));   // truncated
        assertThatThrownBy(() -> extrapolate("sft", "dpo", "out"))
                .satisfies(e -> assertThat(kindOf(e)).isEqualTo(ExpoException.Kind.INVALID_ARGUMENT))
                .hasMessageContaining("past the end of the data section");
        assertThat(store.exists("out")).isFalse();
        assertThat(TestStore.stagingEntries(store)).isZero();
    }

    @Test
    void unknownModelsAndEscapingNamesAreRefused() {
        setUp("sft=tiny-llama-sft");
        assertThatThrownBy(() -> extrapolate("sft", "nope", "out"))
                .satisfies(e -> assertThat(kindOf(e)).isEqualTo(ExpoException.Kind.NOT_FOUND))
                .hasMessageContaining("\"nope\" is not in the model store").hasMessageContaining("sft");
        for (String name : List.of("../etc", "/abs", "a/../../b", ".hidden", "a/b/c", "")) {
            assertThatThrownBy(() -> new ExtrapolationSpec(name, "sft", AlphaSchedule.uniform(1), null))
                    .as(name).satisfies(e -> assertThat(kindOf(e)).isEqualTo(ExpoException.Kind.INVALID_ARGUMENT));
        }
    }

    @Test
    void anExistingOutputIsNeverOverwrittenUnlessAsked() throws IOException {
        setUp("sft=tiny-llama-sft", "dpo=tiny-llama-dpo", "taken=tiny-llama-sft");
        assertThatThrownBy(() -> extrapolate("sft", "dpo", "taken"))
                .satisfies(e -> assertThat(kindOf(e)).isEqualTo(ExpoException.Kind.ALREADY_EXISTS));
        assertThatThrownBy(() -> extrapolate("sft", "dpo", "dpo"))
                .satisfies(e -> assertThat(kindOf(e)).isEqualTo(ExpoException.Kind.INVALID_ARGUMENT));
        ExtrapolationSpec spec = new ExtrapolationSpec("sft", "dpo", AlphaSchedule.uniform(12), null);
        try (ExtrapolationPlan plan = planner.plan(spec, 0)) {
            extrapolator.run(plan, "taken", true, p -> { }, () -> false);
        }
        assertThat(Files.mismatch(root.resolve("taken/model.safetensors"),
                TestStore.fixture("tiny-llama-expo/uniform/model.safetensors"))).isEqualTo(-1L);
        assertThat(TestStore.stagingEntries(store)).isZero();
    }

    @Test
    void aCancelledRunLeavesNothingAndARerunSucceeds() {
        setUp("sft=tiny-llama-sft", "dpo=tiny-llama-dpo");
        ExtrapolationSpec spec = new ExtrapolationSpec("sft", "dpo", AlphaSchedule.uniform(12), null);
        AtomicInteger checks = new AtomicInteger();
        try (ExtrapolationPlan plan = planner.plan(spec, 0)) {
            assertThatThrownBy(() -> extrapolator.run(plan, "out", false, p -> { }, () -> checks.incrementAndGet() > 20))
                    .isInstanceOf(CancellationException.class);
        }
        assertThat(store.exists("out")).isFalse();
        assertThat(TestStore.stagingEntries(store)).isZero();
        extrapolate("sft", "dpo", "out");
        assertThat(store.exists("out")).isTrue();
    }

    @Test
    void abandonedStagingFromAKilledProcessIsRemovedAtStart() throws IOException {
        setUp("sft=tiny-llama-sft");
        // A writer that is gone (a pid past pid_max) left a folder; one still writing (this process) is kept: the
        // services share the store.
        Path written = store.newStagingDir("half-written");
        String pid = "-" + ProcessHandle.current().pid() + "-w-";
        Path leftover = Files.move(written, written.resolveSibling(written.getFileName().toString()
                .replace(pid, "-2147483646-w-")));
        Files.writeString(leftover.resolve("model.safetensors"), "partial");
        Path inProgress = store.newStagingDir("being-written");
        assertThat(store.list()).containsExactly("sft");
        store.removeAbandonedStaging();
        assertThat(leftover).doesNotExist();
        assertThat(inProgress).exists();
        assertThat(TestStore.stagingEntries(store)).isOne();
    }

    @Test
    void theConfigDepthIsCheckedAgainstTheTensorNames() throws IOException {
        setUp();
        List<String> names = List.of("model.layers.0.a.weight", "model.layers.5.a.weight");
        writeModel("x", "LlamaForCausalLM", DType.BF16, names, new long[] {2, 2});
        writeModel("y", "LlamaForCausalLM", DType.BF16, names, new long[] {2, 2});
        assertThatThrownBy(() -> extrapolate("x", "y", "out"))
                .satisfies(e -> assertThat(kindOf(e)).isEqualTo(ExpoException.Kind.FAILED_PRECONDITION))
                .hasMessageContaining("num_hidden_layers = 2");
        ExtrapolationSpec perLayer = new ExtrapolationSpec("sft", "dpo",
                new AlphaSchedule(new LayerSchedule.PerLayer(List.of(1.0, 2.0)), null, List.of()), null);
        setUp("sft=tiny-llama-sft", "dpo=tiny-llama-dpo");
        assertThatThrownBy(() -> planner.plan(perLayer, 0)).hasMessageContaining("6 decoder layers");
    }
}

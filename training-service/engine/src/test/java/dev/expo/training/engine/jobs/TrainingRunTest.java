package dev.expo.training.engine.jobs;

import ai.djl.ndarray.types.DataType;
import dev.expo.checkpoint.HfConfig;
import dev.expo.common.ExpoException;
import dev.expo.common.store.ModelStore;
import dev.expo.inference.engine.TestModels;
import dev.expo.modeling.ModelOptions;
import dev.expo.modeling.clip.ClipVisionConfig;
import dev.expo.modeling.llama.LlamaConfig;
import dev.expo.modeling.lora.LoraAdapter;
import dev.expo.modeling.multimodal.MultimodalManifest;
import dev.expo.training.engine.data.DatasetPreprocessor;
import dev.expo.training.engine.data.DatasetStore;
import dev.expo.training.engine.data.PreferencePair;
import dev.expo.training.engine.ddpo.DdpoTrainer;
import dev.expo.training.engine.optim.LearningRateSchedule;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** A whole run on the rlhfv fixture and the tiny models, to a servable manifest; bad requests refused at planning. */
class TrainingRunTest {

    static final Path FIXTURES = Path.of(System.getProperty("expo.testdata", "../../testdata/fixtures"));

    static TrainingRequest request(String dataset, String output, int global, int micro, List<String> targets) {
        return request(dataset, output, global, micro, targets, true);
    }

    static TrainingRequest request(String dataset, String output, int global, int micro, List<String> targets,
                                   boolean shuffle) {
        return request(dataset, output, global, micro, targets, shuffle, 0);
    }

    static TrainingRequest request(String dataset, String output, int global, int micro, List<String> targets,
                                   boolean shuffle, double dropout) {
        return new TrainingRequest("llm", "clip", null, null, dataset, output, 4, 8, targets, dropout, 1e-3, 1, 0,
                global, micro, 0.01, 0.0, LearningRateSchedule.Kind.LINEAR, 0.1, 2.0, false, 1.0, shuffle, 5, 0, -2,
                false);
    }

    /** A store with the tiny LLaMA as "llm", the tiny CLIP tower as "clip" and 4 rlhfv rows as dataset "rlhfv". */
    static DatasetStore storeWithRlhfv(Path root) throws Exception {
        ModelStore store = new ModelStore(root);
        TestModels.copyTree(FIXTURES.resolve("tiny-llama-sft"), root.resolve("llm"));
        TestModels.copyTree(FIXTURES.resolve("tiny-clip-vision"), root.resolve("clip"));
        DatasetStore datasets = new DatasetStore(store);
        new DatasetPreprocessor(datasets).run(new DatasetPreprocessor.Request(
                FIXTURES.resolve("rlhfv/rlhfv_synth.parquet"), null, "llm", root.resolve("llm"), "rlhfv", 0.2, 1, 256,
                256, false));
        return datasets;
    }

    @Test
    void runsToTheEndAndPublishesAManifestWithAdapterAndProjector(@TempDir Path root) throws Exception {
        DatasetStore datasets = storeWithRlhfv(root);
        ModelStore store = datasets.store();
        List<DdpoTrainer.StepMetrics> steps = new ArrayList<>();
        List<TrainingCheckpoint> checkpoints = new ArrayList<>();
        List<Boolean> cached = new ArrayList<>();
        TrainingRun.Progress progress = new TrainingRun.Progress() {
            @Override
            public void reference(int pairs, boolean fromCache) {
                cached.add(fromCache);
            }

            @Override
            public void step(DdpoTrainer.StepMetrics metrics, double epoch) {
                steps.add(metrics);
            }

            @Override
            public void checkpoint(TrainingCheckpoint checkpoint, boolean epochEnd) {
                checkpoints.add(checkpoint);
            }
        };
        try (TrainingRun run = TrainingRun.plan(store, datasets, request("rlhfv", "out", 2, 1,
                List.of("q_proj", "v_proj", "down_proj")))) {
            assertThat(run.totalSteps()).isEqualTo(2);   // 4 rows, global batch 2, one epoch
            run.run(null, progress, () -> false);
        }
        // The reference log-probs were computed once and stored with the dataset; the same run again reads them.
        try (TrainingRun run = TrainingRun.plan(store, datasets, request("rlhfv", "out2", 2, 1,
                List.of("q_proj", "v_proj", "down_proj")))) {
            run.run(null, progress, () -> false);
        }
        assertThat(cached).containsExactly(false, true);
        assertThat(steps.get(2)).usingRecursiveComparison().ignoringFields("seconds").isEqualTo(steps.get(0));
        steps.subList(2, 4).clear();
        assertThat(checkpoints.getFirst().step()).isEqualTo(2);   // epoch end = last step
        assertThat(steps).hasSize(2);
        assertThat(steps).allSatisfy(s -> assertThat(s.loss()).isFinite().isPositive());
        assertThat(steps.get(0).learningRate()).isEqualTo(1e-3);   // linear decay, no warmup
        assertThat(steps.get(1).learningRate()).isEqualTo(5e-4);
        MultimodalManifest manifest = MultimodalManifest.read(root.resolve("out"));
        assertThat(manifest.languageModel()).isEqualTo("llm");
        assertThat(root.resolve("out/adapter/adapter_model.safetensors")).exists();
        assertThat(root.resolve("out/adapter/adapter_config.json")).exists();
        assertThat(root.resolve("out/projector.safetensors")).exists();
        assertThat(root.resolve("out/tokenizer.json")).exists();
        assertThat(store.list()).contains("out");
    }

    /**
     * A memory cap that a micro batch of two pairs exceeds and one pair fits: the first step runs out of memory, is
     * redone with micro batch 1, and the run ends with the bits of a run configured with micro batch 1; a cap no
     * single pair fits fails the run with RESOURCE_EXHAUSTED.
     */
    @Test
    void outOfMemoryHalvesTheMicroBatchAndKeepsTheGlobalBatch(@TempDir Path root) throws Exception {
        DatasetStore datasets = storeWithRlhfv(root);
        ModelStore store = datasets.store();
        List<DdpoTrainer.StepMetrics> planned = new ArrayList<>();
        Map<String, float[]> expected;
        try (TrainingRun run = TrainingRun.plan(store, datasets, request("rlhfv", "micro1", 2, 1,
                List.of("q_proj", "v_proj"), false))) {
            run.run(null, collecting(planned), () -> false);
            expected = copy(run.parameters());
        }
        LlamaConfig llm = LlamaConfig.from(HfConfig.read(root.resolve("llm")));
        ClipVisionConfig clip = ClipVisionConfig.from(HfConfig.read(root.resolve("clip")));
        // In order: the first step is pairs 0 and 1. Either alone fits the cap, both together (twice the rows) do not.
        List<PreferencePair> pairs = datasets.load("rlhfv").pairs();
        long onePair = DdpoTrainer.activationBytes(llm, clip, 1, Math.max(pairs.get(0).maxLength(),
                pairs.get(1).maxLength()));
        List<DdpoTrainer.StepMetrics> halved = new ArrayList<>();
        try (TrainingRun run = TrainingRun.plan(store, datasets, request("rlhfv", "micro2", 2, 2,
                List.of("q_proj", "v_proj"), false))) {
            run.run(null, onePair, collecting(halved), () -> false);
            assertThat(halved.getFirst().halvings()).isEqualTo(1);
            assertThat(run.parameters()).usingRecursiveComparison().isEqualTo(expected);
        }
        assertThat(halved).allSatisfy(s -> assertThat(s.microBatch()).isEqualTo(1));
        assertThat(halved.getLast().halvings()).isZero();
        assertThat(halved.getLast().loss()).isEqualTo(planned.getLast().loss());

        try (TrainingRun run = TrainingRun.plan(store, datasets, request("rlhfv", "tiny-cap", 2, 2,
                List.of("q_proj", "v_proj")))) {
            assertThatThrownBy(() -> run.run(null, 1024, collecting(new ArrayList<>()), () -> false))
                    .isInstanceOfSatisfying(ExpoException.class, e -> {
                        assertThat(e.kind()).isEqualTo(ExpoException.Kind.RESOURCE_EXHAUSTED);
                        assertThat(e.getMessage()).contains("micro batch of one pair").contains("memory cap");
                    });
        }
        assertThat(store.exists("tiny-cap")).isFalse();
    }

    /** LoRA dropout changes the policy's forward (not the reference's) and is written in the adapter's config. */
    @Test
    void loraDropoutMasksThePolicysAdapterInputs(@TempDir Path root) throws Exception {
        DatasetStore datasets = storeWithRlhfv(root);
        ModelStore store = datasets.store();
        Map<String, List<DdpoTrainer.StepMetrics>> steps = new LinkedHashMap<>();
        for (double dropout : new double[] {0, 0.5}) {
            List<DdpoTrainer.StepMetrics> run = new ArrayList<>();
            try (TrainingRun training = TrainingRun.plan(store, datasets, request("rlhfv", "dropout-" + dropout, 2,
                    1, List.of("q_proj", "v_proj"), true, dropout))) {
                training.run(null, collecting(run), () -> false);
            }
            steps.put("dropout-" + dropout, run);
        }
        DdpoTrainer.StepMetrics plain = steps.get("dropout-0.0").getLast();
        DdpoTrainer.StepMetrics dropped = steps.get("dropout-0.5").getLast();
        assertThat(dropped.referenceChosen()).isEqualTo(plain.referenceChosen());
        assertThat(dropped.policyChosen()).isNotEqualTo(plain.policyChosen());
        assertThat(LoraAdapter.LoraConfig.read(root.resolve("dropout-0.5/adapter")).dropout()).isEqualTo(0.5);
    }

    /** A GPU when there is one (FP16 forward under mixed precision); mixed precision without one is refused. */
    @Test
    void trainsOnTheGpuWhenThereIsOne() {
        assertThat(TrainingRun.device(false, 0)).isEqualTo(ModelOptions.cpu());
        assertThat(TrainingRun.device(false, 1).device().isGpu()).isTrue();
        assertThat(TrainingRun.device(false, 1).computeType()).isEqualTo(DataType.FLOAT32);
        assertThat(TrainingRun.device(true, 1).computeType()).isEqualTo(DataType.FLOAT16);
        assertThatThrownBy(() -> TrainingRun.device(true, 0)).isInstanceOfSatisfying(ExpoException.class, e -> {
            assertThat(e.kind()).isEqualTo(ExpoException.Kind.FAILED_PRECONDITION);
            assertThat(e.getMessage()).contains("needs a GPU");
        });
    }

    private static TrainingRun.Progress collecting(List<DdpoTrainer.StepMetrics> steps) {
        return new TrainingRun.Progress() {
            @Override
            public void step(DdpoTrainer.StepMetrics metrics, double epoch) {
                steps.add(metrics);
            }

            @Override
            public void checkpoint(TrainingCheckpoint checkpoint, boolean epochEnd) {
            }
        };
    }

    private static Map<String, float[]> copy(Map<String, float[]> values) {
        Map<String, float[]> out = new LinkedHashMap<>();
        values.forEach((k, v) -> out.put(k, v.clone()));
        return out;
    }

    @Test
    void badRequestsAreRefusedBeforeAnyJob(@TempDir Path root) throws Exception {
        DatasetStore datasets = storeWithRlhfv(root);
        ModelStore store = datasets.store();
        assertThatThrownBy(() -> request("rlhfv", "o", 3, 2, List.of("q_proj")))
                .isInstanceOfSatisfying(ExpoException.class, e -> assertThat(e.getMessage()).contains("multiple"));
        assertThatThrownBy(() -> TrainingRun.plan(store, datasets, request("rlhfv", "o", 2, 1, List.of("qkv"))))
                .isInstanceOfSatisfying(ExpoException.class, e -> {
                    assertThat(e.kind()).isEqualTo(ExpoException.Kind.INVALID_ARGUMENT);
                    assertThat(e.getMessage()).contains("qkv");
                });
        assertThatThrownBy(() -> TrainingRun.plan(store, datasets, request("nope", "o", 2, 1, List.of("q_proj"))))
                .isInstanceOfSatisfying(ExpoException.class,
                        e -> assertThat(e.kind()).isEqualTo(ExpoException.Kind.NOT_FOUND));
        // A dataset tokenized with another tokenizer than the language model's.
        TestModels.copyTree(FIXTURES.resolve("tiny-llama-sft"), root.resolve("other"));
        Files.writeString(root.resolve("other/tokenizer.json"), Files.readString(root.resolve("llm/tokenizer.json"))
                .replaceFirst("\\{", "{ "));
        new DatasetPreprocessor(datasets).run(new DatasetPreprocessor.Request(
                FIXTURES.resolve("rlhfv/rlhfv_synth.parquet"), null, "other", root.resolve("other"), "other-tok", 0.2,
                1, 256, 256, false));
        assertThatThrownBy(() -> TrainingRun.plan(store, datasets, request("other-tok", "o", 2, 1,
                List.of("q_proj")))).isInstanceOfSatisfying(ExpoException.class, e -> {
                    assertThat(e.kind()).isEqualTo(ExpoException.Kind.FAILED_PRECONDITION);
                    assertThat(e.getMessage()).contains("tokenizer");
                });
    }
}

package dev.expo.training.engine.ddpo;

import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.expo.checkpoint.SafetensorsFile;
import dev.expo.checkpoint.TensorInfo;
import dev.expo.common.store.ModelStore;
import dev.expo.modeling.ModelOptions;
import dev.expo.modeling.clip.ClipVisionModel;
import dev.expo.modeling.llama.LlamaModel;
import dev.expo.modeling.lora.LoraAdapter;
import dev.expo.training.engine.data.DatasetPreprocessor;
import dev.expo.training.engine.data.DatasetStore;
import dev.expo.training.engine.data.PreferenceDataset;
import dev.expo.training.engine.optim.AdamW;
import dev.expo.training.engine.optim.LearningRateSchedule;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

/**
 * The golden step from a JSONL of the fixture's two examples, through the preprocessor and the trainer: the updated
 * parameters are torch's, and gradient accumulation (micro batch 1, global 2) gives the same step as one batch.
 */
class DdpoTrainerTest {

    static final Path FIXTURES = Path.of(System.getProperty("expo.testdata", "../../testdata/fixtures"));
    static final Path DDPO = FIXTURES.resolve("ddpo-multimodal");

    @Test
    void theGoldenStepThroughTheTrainerWithAndWithoutAccumulation(@TempDir Path store) throws Exception {
        JsonNode step = new ObjectMapper().readTree(DDPO.resolve("golden/step.json").toFile());
        ObjectMapper json = new ObjectMapper();
        StringBuilder lines = new StringBuilder();
        for (JsonNode example : step.get("examples")) {
            ObjectNode row = json.createObjectNode();
            row.put("prompt", example.get("prompt").asText());
            row.put("chosen_response", example.get("chosen").asText());
            row.put("rejected_response", example.get("rejected").asText());
            row.put("image_path", FIXTURES.resolve(example.get("image").asText()).toAbsolutePath().toString());
            lines.append(json.writeValueAsString(row)).append('\n');
        }
        Path source = Files.writeString(store.resolve("pairs.jsonl"), lines.toString());
        DatasetStore datasets = new DatasetStore(new ModelStore(store));
        new DatasetPreprocessor(datasets).run(new DatasetPreprocessor.Request(source, null, "tiny-llama-sft",
                FIXTURES.resolve("tiny-llama-sft"), "golden", 0, 0, 256, 256, false));
        PreferenceDataset dataset = datasets.load("golden");
        assertThat(dataset.pairs().get(1).chosenIds()).containsExactly(
                json.convertValue(step.get("examples").get(1).get("chosen_input_ids"), long[].class));

        try (NDManager root = NDManager.newBaseManager();
             SafetensorsFile golden = SafetensorsFile.open(DDPO.resolve("golden/step.safetensors"))) {
            LlamaModel model = LlamaModel.load(FIXTURES.resolve("tiny-llama-sft"), root, ModelOptions.cpu());
            ClipVisionModel tower = ClipVisionModel.load(FIXTURES.resolve("tiny-clip-vision"), root,
                    ModelOptions.cpu());
            LoraAdapter.LoraConfig lora = LoraAdapter.LoraConfig.read(DDPO.resolve("adapter"));
            DdpoLoss.Settings loss = new DdpoLoss.Settings(0.1, 2.0, false);
            LearningRateSchedule constant = LearningRateSchedule.of(LearningRateSchedule.Kind.CONSTANT, 0.001, 0, 1);
            Map<String, float[]> shapesSource = new LinkedHashMap<>();
            Map<String, long[]> shapes = new LinkedHashMap<>();
            for (TensorInfo info : golden.tensors()) {
                if (info.name().startsWith("param_before.")) {
                    String name = info.name().substring("param_before.".length());
                    shapesSource.put(name, golden.tensor(info.name()).toFloats());
                    shapes.put(name, golden.tensor(info.name()).shape());
                }
            }
            Map<String, float[]> oneBatch = copy(shapesSource);
            Map<String, float[]> accumulated = copy(shapesSource);
            DdpoTrainer.StepMetrics metrics;
            try (DdpoTrainer trainer = new DdpoTrainer(model, tower, -2, lora, dataset,
                    new DdpoTrainer.Settings(loss, 2, 0, AdamW.Settings.torchDefaults(0.01)), oneBatch, shapes)) {
                metrics = trainer.step(dataset.pairs(), constant);
            }
            try (DdpoTrainer trainer = new DdpoTrainer(model, tower, -2, lora, dataset,
                    new DdpoTrainer.Settings(loss, 1, 0, AdamW.Settings.torchDefaults(0.01)), accumulated, shapes)) {
                DdpoTrainer.StepMetrics micro = trainer.step(dataset.pairs(), constant);
                assertThat(micro.loss()).isCloseTo(metrics.loss(), within(1e-5));
                assertThat(micro.gradNorm()).isCloseTo(metrics.gradNorm(), within(1e-4 * metrics.gradNorm()));
            }
            // Dynamic loss scaling (FP16 mixed precision's, run here in FP32): a power-of-two scale is exact, so the
            // step is the same to the bit; a scale whose backward overflows skips the update and halves the scale.
            Map<String, float[]> scaled = copy(shapesSource);
            DdpoTrainer.Settings scaling = new DdpoTrainer.Settings(loss, 2, 0, AdamW.Settings.torchDefaults(0.01), 0,
                    0, true);
            try (DdpoTrainer trainer = new DdpoTrainer(model, tower, -2, lora, dataset, scaling, scaled, shapes)) {
                DdpoTrainer.StepMetrics step1 = trainer.step(dataset.pairs(), constant);
                assertThat(step1.lossScale()).isEqualTo(65536.0);
                assertThat(step1.skipped()).isFalse();
                assertThat(scaled).usingRecursiveComparison().isEqualTo(oneBatch);
                trainer.lossScaler().restore(0x1p200, 0);   // past float32's range: the scaled loss is inf
                Map<String, float[]> before = copy(scaled);
                DdpoTrainer.StepMetrics overflow = trainer.step(dataset.pairs(), constant);
                assertThat(overflow.skipped()).isTrue();
                assertThat(overflow.step()).isEqualTo(2);
                assertThat(scaled).usingRecursiveComparison().isEqualTo(before);
                assertThat(trainer.lossScaler().scale()).isEqualTo(0x1p199);
                assertThat(trainer.optimizer().steps()).isEqualTo(1);
                assertThat(trainer.steps()).isEqualTo(2);
            }
            assertThat(metrics.loss()).isCloseTo(golden.tensor("loss").toFloats()[0], within(1e-4));
            assertThat(metrics.accuracy()).isEqualTo(0.0);
            assertThat(metrics.learningRate()).isEqualTo(0.001);
            for (String name : oneBatch.keySet()) {
                float[] expected = golden.tensor("param_after." + name).toFloats();
                for (int i = 0; i < expected.length; i++) {
                    assertThat((double) oneBatch.get(name)[i]).as("%s[%d]", name, i)
                            .isCloseTo(expected[i], within(1e-6));
                    assertThat((double) accumulated.get(name)[i]).as("accumulated %s[%d]", name, i)
                            .isCloseTo(expected[i], within(1e-6));
                }
            }
            model.close();
            tower.close();
        }
    }

    private static Map<String, float[]> copy(Map<String, float[]> source) {
        Map<String, float[]> out = new LinkedHashMap<>();
        source.forEach((k, v) -> out.put(k, v.clone()));
        return out;
    }
}

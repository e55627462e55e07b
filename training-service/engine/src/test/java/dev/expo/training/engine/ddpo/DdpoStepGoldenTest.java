package dev.expo.training.engine.ddpo;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.training.GradientCollector;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.expo.checkpoint.SafetensorsFile;
import dev.expo.checkpoint.Tensor;
import dev.expo.checkpoint.TensorInfo;
import dev.expo.modeling.ModelOptions;
import dev.expo.modeling.NdArrays;
import dev.expo.modeling.clip.ClipImageProcessor;
import dev.expo.modeling.clip.ClipVisionModel;
import dev.expo.modeling.clip.ImageDecoder;
import dev.expo.modeling.llama.LlamaModel;
import dev.expo.modeling.lora.LoraAdapter;
import dev.expo.modeling.lora.LoraApplication;
import dev.expo.training.engine.data.CorrectedTokens;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

/**
 * One multimodal DDPO step on DJL autograd against the ddpo-multimodal golden: CLIP features, policy and reference
 * weighted log-probs, the loss, and the gradient of every LoRA tensor and of the projector.
 */
class DdpoStepGoldenTest {

    static final Path FIXTURES = Path.of(System.getProperty("expo.testdata", "../../testdata/fixtures"));
    static final Path GOLDEN = FIXTURES.resolve("ddpo-multimodal/golden");
    private static final String LORA_PREFIX = "base_model.model.";

    @Test
    void policyReferenceLossAndEveryGradientAreTorchs() throws Exception {
        JsonNode step = new ObjectMapper().readTree(GOLDEN.resolve("step.json").toFile());
        DdpoLoss.Settings settings = new DdpoLoss.Settings(0.1, 2.0, false);
        try (NDManager root = NDManager.newBaseManager();
             SafetensorsFile golden = SafetensorsFile.open(GOLDEN.resolve("step.safetensors"))) {
            ClipVisionModel tower = ClipVisionModel.load(FIXTURES.resolve("tiny-clip-vision"), root, ModelOptions.cpu());
            LlamaModel model = LlamaModel.load(FIXTURES.resolve("tiny-llama-sft"), root, ModelOptions.cpu());
            JsonNode examples = step.get("examples");
            int pairs = examples.size();

            // CLIP features once per image (frozen), penultimate layer, class token dropped.
            List<ClipImageProcessor.PixelValues> pixels = new ArrayList<>();
            for (JsonNode example : examples) {
                byte[] bytes = Files.readAllBytes(FIXTURES.resolve(example.get("image").asText()));
                pixels.add(tower.processor().process(ImageDecoder.decode(bytes, 1 << 24)));
            }
            NDArray features = tower.forward(root, pixels).hiddenState(-2).get(":, 1:, :");
            expectClose(NdArrays.toFloats(features), golden.tensor("image_features").toFloats(), 1e-5, "features");

            // Rows [chosen_0..chosen_B-1, rejected_0..rejected_B-1], as Muffin's concatenated batch.
            long[][] ids = new long[2 * pairs][];
            float[][] weights = new float[2 * pairs][];
            for (int i = 0; i < pairs; i++) {
                JsonNode example = examples.get(i);
                long[] chosen = longs(example.get("chosen_input_ids"));
                long[] rejected = longs(example.get("rejected_input_ids"));
                int prompt = example.get("prompt_ids").size();
                CorrectedTokens diff = CorrectedTokens.diff(Arrays.copyOfRange(rejected, 1, rejected.length),
                        Arrays.copyOfRange(chosen, 1, chosen.length), 3);
                ids[i] = chosen;
                ids[pairs + i] = rejected;
                weights[i] = DdpoLoss.tokenWeights(chosen.length, prompt, diff.chosen(), settings.gamma());
                weights[pairs + i] = DdpoLoss.tokenWeights(rejected.length, prompt, diff.rejected(), settings.gamma());
            }
            NDArray rowFeatures = features.concat(features, 0);

            try (NDManager scope = root.newSubManager()) {
                // Trainable tensors, fresh each step from the master weights.
                Map<String, NDArray> trainable = new LinkedHashMap<>();
                for (TensorInfo info : golden.tensors()) {
                    if (info.name().startsWith("param_before.")) {
                        String name = info.name().substring("param_before.".length());
                        Tensor tensor = golden.tensor(info.name());
                        NDArray array = NdArrays.ofFloats(scope, tensor.toFloats(), tensor.shape());
                        array.setRequiresGradient(true);
                        trainable.put(name, array);
                    }
                }
                Map<String, NDArray[]> modules = new LinkedHashMap<>();
                trainable.forEach((name, array) -> {
                    if (name.startsWith(LORA_PREFIX)) {
                        String path = name.substring(LORA_PREFIX.length(), name.indexOf(".lora_"));
                        NDArray[] ab = modules.computeIfAbsent(path, k -> new NDArray[2]);
                        ab[name.contains(".lora_A.") ? 0 : 1] = array;
                    }
                });
                LoraAdapter adapter = LoraAdapter.of(LoraAdapter.LoraConfig.read(FIXTURES.resolve(
                        "ddpo-multimodal/adapter")), scope, modules);
                float[] ones = new float[2 * pairs];
                Arrays.fill(ones, 1f);

                // Reference: adapter disabled, no gradient, the same initial projector.
                float[] reference = NdArrays.toFloats(DdpoForward.weightedLogps(scope, model, rowFeatures,
                        trainable.get("projector.weight").stopGradient(), trainable.get("projector.bias").stopGradient(),
                        List.of(), ids, weights, false));
                close(Arrays.copyOfRange(reference, 0, pairs), golden.tensor("reference_chosen_logps").toFloats());
                close(Arrays.copyOfRange(reference, pairs, 2 * pairs),
                        golden.tensor("reference_rejected_logps").toFloats());

                try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
                    NDArray policy = DdpoForward.weightedLogps(scope, model, rowFeatures,
                            trainable.get("projector.weight"), trainable.get("projector.bias"),
                            List.of(new LoraApplication(adapter, ones)), ids, weights, false);
                    float[] values = NdArrays.toFloats(policy);
                    close(Arrays.copyOfRange(values, 0, pairs), golden.tensor("policy_chosen_logps").toFloats());
                    close(Arrays.copyOfRange(values, pairs, 2 * pairs),
                            golden.tensor("policy_rejected_logps").toFloats());
                    DdpoLoss.Batch batch = DdpoLoss.of(settings, doubles(values, 0, pairs),
                            doubles(values, pairs, 2 * pairs), doubles(reference, 0, pairs),
                            doubles(reference, pairs, 2 * pairs), pairs);
                    assertThat(batch.loss()).isCloseTo(golden.tensor("loss").toFloats()[0], within(1e-4));
                    float[] coefficients = new float[2 * pairs];
                    for (int i = 0; i < pairs; i++) {
                        coefficients[i] = (float) batch.chosenGradient()[i];
                        coefficients[pairs + i] = (float) batch.rejectedGradient()[i];
                    }
                    // A collection between forward and backward frees the Java buffers of arrays DJL made and
                    // closed during the forward; any the backward still reads would turn the gradients to NaN (they
                    // did: LlamaModel's div/pow by numbers, until it kept those scalars in memory libtorch owns).
                    for (int i = 0; i < 3; i++) {
                        System.gc();
                    }
                    Thread.sleep(50);
                    collector.backward(policy.mul(scope.create(coefficients)).sum());
                }
                for (Map.Entry<String, NDArray> entry : trainable.entrySet()) {
                    float[] expected = golden.tensor("grad." + entry.getKey()).toFloats();
                    double max = 0;
                    for (float g : expected) {
                        max = Math.max(max, Math.abs(g));
                    }
                    expectClose(NdArrays.toFloats(entry.getValue().getGradient()), expected, 1e-4 * max,
                            entry.getKey());
                }
            }
            model.close();
            tower.close();
        }
    }

    private static double[] doubles(float[] values, int from, int to) {
        double[] out = new double[to - from];
        for (int i = from; i < to; i++) {
            out[i - from] = values[i];
        }
        return out;
    }

    private static void close(float[] actual, float[] expected) {
        for (int i = 0; i < expected.length; i++) {
            assertThat((double) actual[i]).isCloseTo(expected[i], within(1e-4 * Math.max(1, Math.abs(expected[i]))));
        }
    }

    private static void expectClose(float[] actual, float[] expected, double tolerance, String name) {
        assertThat(actual).as(name).hasSize(expected.length);
        for (int i = 0; i < expected.length; i++) {
            assertThat((double) actual[i]).as("%s[%d]", name, i).isCloseTo(expected[i], within(tolerance));
        }
    }

    private static long[] longs(JsonNode array) {
        long[] out = new long[array.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = array.get(i).asLong();
        }
        return out;
    }
}

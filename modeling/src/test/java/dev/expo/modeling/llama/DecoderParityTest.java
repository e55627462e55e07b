package dev.expo.modeling.llama;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.JsonNode;
import dev.expo.modeling.Goldens;
import dev.expo.modeling.ModelOptions;
import dev.expo.modeling.NdArrays;
import dev.expo.modeling.lora.LoraAdapter;
import dev.expo.modeling.lora.LoraApplication;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * LLaMA and Mistral against transformers 4.44.2: logits within 1e-4 (BF16 checkpoints upcast to FP32 against the
 * bf16 goldens, the fp32 copies against the fp32 goldens), hidden states within 1e-4, and greedy generations with
 * the KV cache identical token for token, with each step's logits within 1e-4.
 */
class DecoderParityTest {

    private static final double TOLERANCE = 1e-4;
    static NDManager manager;

    @BeforeAll
    static void start() {
        manager = NDManager.newBaseManager();
    }

    @AfterAll
    static void stop() {
        manager.close();
    }

    /** model folder, LoRA adapter folder (or null), golden folder, weights variant. */
    static Stream<Arguments> variants() {
        return Stream.of(
                Arguments.of("tiny-llama-sft", null, "tiny-llama-sft", "bf16"),
                Arguments.of("tiny-llama-sft/fp32", null, "tiny-llama-sft", "fp32"),
                Arguments.of("tiny-mistral", null, "tiny-mistral", "bf16"),
                Arguments.of("tiny-mistral/fp32", null, "tiny-mistral", "fp32"),
                Arguments.of("tiny-llama-sft", "tiny-llama-lora", "tiny-llama-lora", "bf16"),
                Arguments.of("tiny-llama-sft/fp32", "tiny-llama-lora/fp32", "tiny-llama-lora", "fp32"),
                Arguments.of("tiny-llama-expo/uniform", null, "tiny-llama-expo", "uniform"),
                Arguments.of("tiny-llama-expo/layerwise", null, "tiny-llama-expo", "layerwise"));
    }

    @ParameterizedTest(name = "{0} + {1} vs {2} {3}")
    @MethodSource("variants")
    void logitsAndGreedyGenerationMatchTransformers(String modelDir, String loraDir, String golden, String variant) {
        try (LlamaModel model = LlamaModel.load(Goldens.path(modelDir), manager, ModelOptions.cpu());
             LoraAdapter lora = loraDir == null ? null : LoraAdapter.load(Goldens.path(loraDir), manager,
                     ModelOptions.cpu())) {
            String logitsFile = golden + "/golden/logits.safetensors";
            JsonNode generate = Goldens.json(golden + "/golden/generate.json");
            for (String prompt : List.of("p0", "p1")) {
                long[] ids = Goldens.prompt(prompt);
                float[] logits = fullLogits(model, lora, ids);
                Goldens.assertClose(logits, Goldens.floats(logitsFile, "logits." + variant + "." + prompt), TOLERANCE,
                        modelDir + " logits " + prompt);

                JsonNode expected = generate.get(prompt).get(variant);
                if (expected == null) {
                    continue;
                }
                List<float[]> stepLogits = new ArrayList<>();
                long[] tokens = greedy(model, lora, ids, expected.get("num_new_tokens").asInt(), stepLogits);
                long[] expectedTokens = new long[expected.get("new_tokens").size()];
                for (int i = 0; i < expectedTokens.length; i++) {
                    expectedTokens[i] = expected.get("new_tokens").get(i).asLong();
                }
                assertThat(tokens).as(modelDir + " greedy " + prompt).containsExactly(expectedTokens);
                String stepKey = "generate_step_logits." + variant + "." + prompt;
                if (Arrays.asList(stepKeys(logitsFile)).contains(stepKey)) {
                    float[] all = Goldens.floats(logitsFile, stepKey);
                    int vocab = model.config().vocabSize();
                    for (int step = 0; step < stepLogits.size(); step++) {
                        Goldens.assertClose(stepLogits.get(step), Arrays.copyOfRange(all, step * vocab,
                                (step + 1) * vocab), TOLERANCE, modelDir + " step " + step + " " + prompt);
                    }
                }
            }
        }
    }

    @ParameterizedTest(name = "{0} hidden states")
    @MethodSource("hiddenStateVariants")
    void hiddenStatesMatchTransformers(String modelDir, String golden) {
        try (LlamaModel model = LlamaModel.load(Goldens.path(modelDir), manager, ModelOptions.cpu());
             NDManager scope = manager.newSubManager();
             KvCache cache = model.newCache(1, 64)) {
            for (String prompt : List.of("p0", "p1")) {
                cache.reset(0);
                long[] ids = Goldens.prompt(prompt);
                LlamaModel.Forward forward = model.forward(scope, model.embed(scope, new long[][] {ids}), new int[] {0},
                        new int[] {ids.length}, cache, List.of(), true);
                float[] expected = Goldens.floats(golden + "/golden/logits.safetensors", "hidden_states.fp32." + prompt);
                int per = ids.length * model.config().hiddenSize();
                assertThat(forward.hiddenStates()).hasSize(model.config().numLayers() + 1);
                for (int i = 0; i < forward.hiddenStates().size(); i++) {
                    Goldens.assertClose(NdArrays.toFloats(forward.hiddenStates().get(i)),
                            Arrays.copyOfRange(expected, i * per, (i + 1) * per), TOLERANCE,
                            modelDir + " hidden state " + i + " " + prompt);
                }
            }
        }
    }

    static Stream<Arguments> hiddenStateVariants() {
        return Stream.of(Arguments.of("tiny-llama-sft/fp32", "tiny-llama-sft"),
                Arguments.of("tiny-mistral/fp32", "tiny-mistral"));
    }

    private static String[] stepKeys(String file) {
        try (var safetensors = dev.expo.checkpoint.SafetensorsFile.open(Goldens.path(file))) {
            return safetensors.tensors().stream().map(dev.expo.checkpoint.TensorInfo::name).toArray(String[]::new);
        }
    }

    private static List<LoraApplication> adapters(LoraAdapter lora) {
        return lora == null ? List.of() : List.of(new LoraApplication(lora, new float[] {1f}));
    }

    static float[] fullLogits(LlamaModel model, LoraAdapter lora, long[] ids) {
        try (NDManager scope = manager.newSubManager(); KvCache cache = model.newCache(1, ids.length)) {
            NDArray hidden = model.forward(scope, model.embed(scope, new long[][] {ids}), new int[] {0},
                    new int[] {ids.length}, cache, adapters(lora), false).hidden();
            return NdArrays.toFloats(model.logits(hidden));
        }
    }

    /** Greedy decoding with the cache: prefill, then one token at a time. */
    static long[] greedy(LlamaModel model, LoraAdapter lora, long[] prompt, int newTokens, List<float[]> stepLogits) {
        long[] out = new long[newTokens];
        try (KvCache cache = model.newCache(1, 8)) {
            long[] input = prompt;
            for (int step = 0; step < newTokens; step++) {
                try (NDManager scope = manager.newSubManager()) {
                    NDArray hidden = model.forward(scope, model.embed(scope, new long[][] {input}), new int[] {0},
                            new int[] {input.length}, cache, adapters(lora), false).hidden();
                    NDArray last = hidden.get(":, -1, :");
                    float[] logits = NdArrays.toFloats(model.logits(last));
                    stepLogits.add(logits);
                    int best = 0;
                    for (int v = 1; v < logits.length; v++) {
                        if (logits[v] > logits[best]) {
                            best = v;
                        }
                    }
                    out[step] = best;
                    input = new long[] {best};
                }
            }
        }
        return out;
    }
}

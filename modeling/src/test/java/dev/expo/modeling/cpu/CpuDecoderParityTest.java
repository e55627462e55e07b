package dev.expo.modeling.cpu;

import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.JsonNode;
import dev.expo.modeling.Goldens;
import dev.expo.modeling.ModelOptions;
import dev.expo.modeling.lora.LoraAdapter;
import dev.expo.modeling.sampling.TokenSampler;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The CPU decoder against transformers 4.44.2, as the DJL decoder is: prompt logits within 1e-4, greedy generations
 * token for token with every step's logits within 1e-4, for LLaMA, Mistral (past its window), LoRA and the ExPO
 * models, BF16 and FP32.
 */
class CpuDecoderParityTest {

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
    void logitsAndGreedyGenerationMatchTransformers(String modelDir, String loraDir, String golden, String variant)
            throws Exception {
        try (CpuDecoder decoder = CpuDecoder.load(Goldens.path(modelDir));
             NDManager manager = NDManager.newBaseManager()) {
            List<CpuLora> lora = List.of();
            if (loraDir != null) {
                try (LoraAdapter adapter = LoraAdapter.load(Goldens.path(loraDir), manager, ModelOptions.cpu())) {
                    lora = List.of(CpuLora.of(adapter));
                }
            }
            String logitsFile = golden + "/golden/logits.safetensors";
            JsonNode generate = Goldens.json(golden + "/golden/generate.json");
            int vocab = decoder.config().vocabSize();
            for (String prompt : List.of("p0", "p1")) {
                long[] ids = Goldens.prompt(prompt);
                CpuKvCache cache = decoder.newCache(1);
                float[][] inputs = new float[ids.length][];
                for (int i = 0; i < ids.length; i++) {
                    inputs[i] = decoder.embed((int) ids[i]);
                }
                List<CpuLora> scaled = lora.stream().map(l -> l.scaled(ones(ids.length))).toList();
                float[][] logits = decoder.logits(decoder.forward(inputs, new int[ids.length], cache, scaled));
                float[] flat = new float[ids.length * vocab];
                for (int i = 0; i < ids.length; i++) {
                    System.arraycopy(logits[i], 0, flat, i * vocab, vocab);
                }
                Goldens.assertClose(flat, Goldens.floats(logitsFile, "logits." + variant + "." + prompt), 1e-4,
                        modelDir + " logits " + prompt);

                JsonNode expected = generate.get(prompt).get(variant);
                List<Long> tokens = new ArrayList<>();
                float[] last = logits[ids.length - 1];
                String stepKey = "generate_step_logits." + variant + "." + prompt;
                float[] steps = hasKey(logitsFile, stepKey) ? Goldens.floats(logitsFile, stepKey) : null;
                List<CpuLora> one = lora.stream().map(l -> l.scaled(ones(1))).toList();
                for (int step = 0; step < expected.get("num_new_tokens").asInt(); step++) {
                    if (steps != null) {
                        Goldens.assertClose(last, Arrays.copyOfRange(steps, step * vocab, (step + 1) * vocab), 1e-4,
                                modelDir + " step " + step);
                    }
                    int token = TokenSampler.argmax(last);
                    tokens.add((long) token);
                    last = decoder.logits(decoder.forward(new float[][] {decoder.embed(token)}, new int[1], cache,
                            one))[0];
                }
                List<Long> want = new ArrayList<>();
                expected.get("new_tokens").forEach(t -> want.add(t.asLong()));
                assertThat(tokens).as(modelDir + " greedy " + prompt).isEqualTo(want);
            }
        }
    }

    private static boolean hasKey(String file, String key) {
        try (var safetensors = dev.expo.checkpoint.SafetensorsFile.open(Goldens.path(file))) {
            return safetensors.contains(key);
        }
    }

    private static float[] ones(int n) {
        float[] out = new float[n];
        Arrays.fill(out, 1f);
        return out;
    }
}

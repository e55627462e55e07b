package dev.expo.e2e;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.expo.checkpoint.SafetensorsFile;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.io.IOException;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Collectors;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.offset;

/**
 * The model runtime's goldens through the running stack, as a user gets them: bin/expo score, generate and
 * embed-image against the gateway. Logprobs and hidden states within 1e-4, greedy generations token for token.
 */
@ExtendWith(StackExtension.class)
class InferenceIT {

    private static final ObjectMapper JSON = new ObjectMapper();

    @BeforeAll
    static void models(Stack stack) throws IOException {
        stack.addModel("tiny-llama-sft", "tiny-llama-sft");
        stack.addModel("tiny-llama-sft-fp32", "tiny-llama-sft/fp32");
        for (String file : List.of("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")) {
            Files.copy(stack.fixture("tokenizer/" + file), stack.store.resolve("tiny-llama-sft-fp32").resolve(file));
        }
        stack.addModel("tiny-mistral", "tiny-mistral");
        stack.addModel("tiny-llama-lora", "tiny-llama-lora");
        stack.addModel("tiny-clip-vision", "tiny-clip-vision");
        stack.addModel("expo-uniform-golden", "tiny-llama-expo/uniform");
        stack.addModel("expo-layerwise-golden", "tiny-llama-expo/layerwise");
        stack.addModel("tiny-reward", "tiny-reward");
    }

    private static String ids(long[] ids) {
        return Arrays.stream(ids).mapToObj(Long::toString).collect(Collectors.joining(","));
    }

    private static long[] prompt(Stack stack, String name) throws IOException {
        JsonNode ids = JSON.readTree(Files.readString(stack.fixture("inputs.json"))).get("prompts").get(name);
        long[] out = new long[ids.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = ids.get(i).asLong();
        }
        return out;
    }

    private static float[] golden(Stack stack, String file, String key) {
        try (SafetensorsFile safetensors = SafetensorsFile.open(stack.fixture(file))) {
            return safetensors.tensor(key).toFloats();
        }
    }

    /** bin/expo score --json against log_softmax of the golden logits, every position and the top-3. */
    private static void assertScore(Stack stack, String model, String adapter, String prompt, String logitsFile,
                                    String key) throws Exception {
        long[] ids = prompt(stack, prompt);
        List<String> args = new ArrayList<>(List.of("score", "--model", model, "--ids", ids(ids), "--top-logprobs",
                "3", "--json"));
        if (adapter != null) {
            args.addAll(List.of("--adapter", adapter));
        }
        Cli.Result result = Cli.run(stack, args.toArray(String[]::new));
        assertThat(result.exitCode()).as(result.toString()).isZero();
        JsonNode positions = JSON.readTree(result.stdout()).get("positions");
        float[] logits = golden(stack, logitsFile, key);
        int vocab = logits.length / ids.length;
        assertThat(positions.size()).isEqualTo(ids.length);
        for (int i = 0; i < ids.length; i++) {
            double[] expected = logSoftmax(Arrays.copyOfRange(logits, i * vocab, (i + 1) * vocab));
            JsonNode position = positions.get(i);
            if (i + 1 < ids.length) {
                assertThat(position.get("token_id").asLong()).isEqualTo(ids[i + 1]);
                assertThat(position.get("logprob").asDouble()).as(model + " " + prompt + " position " + i)
                        .isCloseTo(expected[(int) ids[i + 1]], offset(1e-4));
            } else {
                assertThat(position.get("token_id").isNull()).isTrue();
            }
            JsonNode top = position.get("top");
            for (int k = 0; k < top.size(); k++) {
                assertThat(top.get(k).get(1).asDouble()).isCloseTo(expected[top.get(k).get(0).asInt()], offset(1e-4));
            }
            double best = Arrays.stream(expected).max().orElseThrow();
            assertThat(top.get(0).get(1).asDouble()).isCloseTo(best, offset(1e-4));
        }
    }

    /** bin/expo generate --json, greedy, against generate.json's new tokens. */
    private static void assertGreedy(Stack stack, String model, String adapter, String prompt, String goldenFile,
                                     String variant) throws Exception {
        JsonNode expected = JSON.readTree(Files.readString(stack.fixture(goldenFile))).get(prompt).get(variant);
        List<String> args = new ArrayList<>(List.of("generate", "--model", model, "--prompt-ids",
                ids(prompt(stack, prompt)), "--max-new-tokens", expected.get("num_new_tokens").asText(),
                "--temperature", "0", "--json"));
        if (adapter != null) {
            args.addAll(List.of("--adapter", adapter));
        }
        Cli.Result result = Cli.run(stack, args.toArray(String[]::new));
        assertThat(result.exitCode()).as(result.toString()).isZero();
        String last = result.stdout().strip().lines().reduce((a, b) -> b).orElseThrow();
        JsonNode generated = JSON.readTree(last);
        List<Long> tokens = new ArrayList<>();
        generated.get("token_ids").forEach(t -> tokens.add(t.asLong()));
        List<Long> want = new ArrayList<>();
        expected.get("new_tokens").forEach(t -> want.add(t.asLong()));
        assertThat(tokens).as(model + " greedy " + prompt).isEqualTo(want);
        assertThat(generated.get("finish_reason").asText()).isIn("length", "stop");
    }

    @Test
    void llamaMistralLoraAndExpoGoldensThroughBinExpo(Stack stack) throws Exception {
        assertScore(stack, "tiny-llama-sft", null, "p1", "tiny-llama-sft/golden/logits.safetensors", "logits.bf16.p1");
        assertScore(stack, "tiny-llama-sft-fp32", null, "p0", "tiny-llama-sft/golden/logits.safetensors",
                "logits.fp32.p0");
        assertScore(stack, "tiny-mistral", null, "p1", "tiny-mistral/golden/logits.safetensors", "logits.bf16.p1");
        assertScore(stack, "tiny-llama-sft", "tiny-llama-lora", "p1", "tiny-llama-lora/golden/logits.safetensors",
                "logits.bf16.p1");
        assertScore(stack, "expo-uniform-golden", null, "p0", "tiny-llama-expo/golden/logits.safetensors",
                "logits.uniform.p0");
        assertScore(stack, "expo-layerwise-golden", null, "p1", "tiny-llama-expo/golden/logits.safetensors",
                "logits.layerwise.p1");
        assertGreedy(stack, "tiny-llama-sft", null, "p1", "tiny-llama-sft/golden/generate.json", "bf16");
        assertGreedy(stack, "tiny-mistral", null, "p1", "tiny-mistral/golden/generate.json", "bf16");
        assertGreedy(stack, "tiny-llama-sft", "tiny-llama-lora", "p0", "tiny-llama-lora/golden/generate.json", "bf16");
        assertGreedy(stack, "expo-layerwise-golden", null, "p0", "tiny-llama-expo/golden/generate.json", "layerwise");
        assertChatTokens(stack);
    }

    /**
     * bin/expo score --messages: the conversations transformers' apply_chat_template tokenized (the tokenizer
     * fixture's goldens; tiny-llama-sft has that tokenizer), read back from the scored positions' token ids.
     */
    private static void assertChatTokens(Stack stack) throws Exception {
        for (JsonNode c : JSON.readTree(Files.readString(stack.fixture("tokenizer/golden/tokenizer_golden.json")))
                .get("chat_template_cases")) {
            java.nio.file.Path file = Files.createTempFile("messages", ".json");
            Files.writeString(file, c.get("messages").toString());
            List<String> args = new ArrayList<>(List.of("score", "--model", "tiny-llama-sft", "--messages",
                    file.toString(), "--json"));
            if (c.get("add_generation_prompt").asBoolean()) {
                args.add("--add-generation-prompt");
            }
            Cli.Result result = Cli.run(stack, args.toArray(String[]::new));
            Files.delete(file);
            assertThat(result.exitCode()).as(result.toString()).isZero();
            List<Integer> next = new ArrayList<>();
            JSON.readTree(result.stdout()).get("positions").forEach(p -> next.add(p.get("token_id").isNull() ? null
                    : p.get("token_id").asInt()));
            List<Integer> expected = new ArrayList<>();
            c.get("ids_apply_chat_template_tokenize_true").forEach(id -> expected.add(id.asInt()));
            expected.removeFirst();   // position i scores token i + 1; the last scores nothing
            expected.add(null);
            assertThat(next).as(c.get("messages").toString()).isEqualTo(expected);
        }
    }

    /** bin/expo reward --json: transformers' LlamaForSequenceClassification scores, at its pooled token and the last. */
    @Test
    void rewardGoldensThroughBinExpoReward(Stack stack) throws Exception {
        JsonNode main = JSON.readTree(Files.readString(stack.fixture("tiny-reward/golden/scores.json"))).get("main");
        for (int i = 0; i < main.get("texts").size(); i++) {
            for (boolean last : new boolean[] {false, true}) {
                List<String> args = new ArrayList<>(List.of("reward", "--model", "tiny-reward", "--text",
                        main.get("texts").get(i).asText(), "--json"));
                if (last) {
                    args.add("--last-token");
                }
                Cli.Result result = Cli.run(stack, args.toArray(String[]::new));
                assertThat(result.exitCode()).as(result.toString()).isZero();
                JsonNode reward = JSON.readTree(result.stdout());
                int length = main.get("lengths").get(i).asInt();
                assertThat(reward.get("input_tokens").asInt()).isEqualTo(length);
                assertThat(reward.get("position").asInt()).isEqualTo(last ? length - 1
                        : main.get("hf_scored_position").get(i).asInt());
                assertThat(reward.get("reward").asDouble()).as("text %d last %s", i, last).isCloseTo(main
                        .get("variants").get("bf16").get(last ? "score_at_last_non_pad_position" : "score").get(i)
                        .asDouble(), offset(1e-4));
            }
        }
        Cli.Result notReward = Cli.run(stack, "reward", "--model", "tiny-llama-sft", "--prompt", "hi", "--response",
                "hello");
        assertThat(notReward.exitCode()).as(notReward.toString()).isEqualTo(1);
        assertThat(notReward.stderr()).contains("not a reward model");
    }

    @Test
    void clipGoldensThroughBinExpoEmbedImage(Stack stack) throws Exception {
        for (String image : List.of("img0_48x40", "img1_31x31")) {
            String golden = "tiny-clip-vision/golden/" + image + ".safetensors";
            String file = stack.fixture("images/" + image + ".png").toString();
            for (String[] output : new String[][] {{"--layer", "-2", "hidden_states_penultimate.bf16"},
                {"--pooled", null, "pooler_output.bf16"}, {"--layer", "0", "hidden_states_all.bf16"}}) {
                List<String> args = new ArrayList<>(List.of("embed-image", "--model", "tiny-clip-vision", "--image",
                        file, "--json", output[0]));
                if (output[1] != null) {
                    args.add(output[1]);
                }
                Cli.Result result = Cli.run(stack, args.toArray(String[]::new));
                assertThat(result.exitCode()).as(result.toString()).isZero();
                JsonNode values = JSON.readTree(result.stdout()).get("values");
                float[] expected = golden(stack, golden, output[2]);
                for (int i = 0; i < values.size(); i++) {
                    assertThat(values.get(i).asDouble()).as(image + " " + output[2] + " " + i)
                            .isCloseTo(expected[i], offset(1e-4));
                }
            }
        }
    }

    @Test
    void theDemoMultimodalModelAnswersAnImage(Stack stack) throws Exception {
        Cli.Result seed = Cli.run(stack, "demo", "seed", "--store", stack.store.toString());
        assertThat(seed.exitCode()).as(seed.toString()).isZero();
        Cli.Result result = Cli.run(stack, "generate", "--model", "demo-vlm", "--image",
                stack.root.resolve("examples/images/demo.png").toString(), "--prompt", "What is in the image?",
                "--max-new-tokens", "6", "--json");
        assertThat(result.exitCode()).as(result.toString()).isZero();
        JsonNode generated = JSON.readTree(result.stdout().strip().lines().reduce((a, b) -> b).orElseThrow());
        assertThat(generated.get("token_ids").size()).isBetween(1, 6);
        assertThat(generated.get("prompt_tokens").asInt()).isGreaterThan(16);   // 16 image tokens + the text
    }

    private static double[] logSoftmax(float[] logits) {
        double max = Double.NEGATIVE_INFINITY;
        for (float l : logits) {
            max = Math.max(max, l);
        }
        double sum = 0;
        for (float l : logits) {
            sum += Math.exp(l - max);
        }
        double[] out = new double[logits.length];
        for (int i = 0; i < logits.length; i++) {
            out[i] = logits[i] - max - Math.log(sum);
        }
        return out;
    }
}

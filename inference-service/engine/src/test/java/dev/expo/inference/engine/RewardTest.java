package dev.expo.inference.engine;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.expo.common.ExpoException;
import dev.expo.common.store.ModelStore;
import dev.expo.modeling.ModelOptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

/**
 * The tiny-reward golden (transformers 4.44.2's LlamaForSequenceClassification), both batches and both weight
 * variants: the same ids from the texts, the same scored positions (the token before the first pad id, which is
 * {@code </s>} here), the same rewards; the last-token mode scores the last token.
 */
class RewardTest {

    static final Path FIXTURES = Path.of(System.getProperty("expo.testdata", "../../testdata/fixtures"));

    @TempDir
    Path root;

    @Test
    void rewardsAreTransformersAtTheTokenItPools() throws Exception {
        TestModels.copyTree(FIXTURES.resolve("tiny-reward"), root.resolve("rm-bf16"));
        TestModels.copyTree(FIXTURES.resolve("tiny-reward"), root.resolve("rm-fp32"));
        TestModels.copyTree(FIXTURES.resolve("tiny-reward/fp32"), root.resolve("rm-fp32"));
        TestModels.copyTree(FIXTURES.resolve("tiny-llama-sft"), root.resolve("lm"));
        JsonNode golden = new ObjectMapper().readTree(FIXTURES.resolve("tiny-reward/golden/scores.json").toFile());
        try (ModelRegistry registry = new ModelRegistry(new ModelStore(root), ModelOptions.cpu(), Long.MAX_VALUE);
             InferenceEngine engine = new InferenceEngine(registry, InferenceLimits.defaults(), 1)) {
            for (String batch : List.of("main", "edge")) {
                JsonNode b = golden.get(batch);
                List<Prompt> texts = new ArrayList<>();
                b.get("texts").forEach(t -> texts.add(Prompt.ofText(t.asText())));
                for (String variant : List.of("bf16", "fp32")) {
                    List<Outputs.Reward> rewards = engine.reward("rm-" + variant, texts, Outputs.RewardPosition.HF);
                    for (int i = 0; i < texts.size(); i++) {
                        assertThat(rewards.get(i).tokens()).as("%s %d", batch, i)
                                .isEqualTo(b.get("lengths").get(i).asInt());
                        assertThat(rewards.get(i).position()).isEqualTo(b.get("hf_scored_position").get(i).asInt());
                        assertThat((double) rewards.get(i).reward()).as("%s %s %d", batch, variant, i)
                                .isCloseTo(b.get("variants").get(variant).get("score").get(i).asDouble(),
                                        within(1e-4));
                    }
                    List<Outputs.Reward> last = engine.reward("rm-" + variant, texts,
                            Outputs.RewardPosition.LAST_TOKEN);
                    for (int i = 0; i < texts.size(); i++) {
                        assertThat(last.get(i).position()).isEqualTo(b.get("lengths").get(i).asInt() - 1);
                        assertThat((double) last.get(i).reward()).isCloseTo(b.get("variants").get(variant)
                                .get("score_at_last_non_pad_position").get(i).asDouble(), within(1e-4));
                    }
                }
            }
            // Token ids score the same as the text they encode.
            long[] ids = new ObjectMapper().convertValue(golden.get("main").get("ids").get(2), long[].class);
            long[] unpadded = java.util.Arrays.copyOf(ids, golden.get("main").get("lengths").get(2).asInt());
            assertThat(engine.reward("rm-fp32", List.of(Prompt.ofIds(unpadded)), Outputs.RewardPosition.HF)
                    .getFirst().reward()).isEqualTo(engine.reward("rm-fp32", List.of(Prompt.ofText(
                            golden.get("main").get("texts").get(2).asText())), Outputs.RewardPosition.HF)
                    .getFirst().reward());
            assertThatThrownBy(() -> engine.reward("lm", List.of(Prompt.ofText("hi")), Outputs.RewardPosition.HF))
                    .isInstanceOfSatisfying(ExpoException.class, e -> {
                        assertThat(e.kind()).isEqualTo(ExpoException.Kind.INVALID_ARGUMENT);
                        assertThat(e.getMessage()).contains("not a reward model");
                    });
            assertThatThrownBy(() -> engine.reward("rm-fp32", List.of(), Outputs.RewardPosition.HF))
                    .isInstanceOf(ExpoException.class);
            assertThatThrownBy(() -> engine.reward("nope", List.of(Prompt.ofText("hi")), Outputs.RewardPosition.HF))
                    .isInstanceOfSatisfying(ExpoException.class,
                            e -> assertThat(e.kind()).isEqualTo(ExpoException.Kind.NOT_FOUND));
        }
        assertThat(Files.exists(root.resolve("rm-fp32/tokenizer.json"))).isTrue();
    }

    @Test
    void hfPoolsBeforeTheFirstPadElseTheLastToken() {
        assertThat(InferenceEngine.hfPooledIndex(new long[] {1, 5, 6}, 2)).isEqualTo(2);
        assertThat(InferenceEngine.hfPooledIndex(new long[] {1, 5, 2, 6, 2}, 2)).isEqualTo(1);
        assertThat(InferenceEngine.hfPooledIndex(new long[] {2, 5, 6}, 2)).isEqualTo(2);
    }
}

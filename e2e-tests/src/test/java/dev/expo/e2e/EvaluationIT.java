package dev.expo.e2e;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

/** The alpha sweep through the gateway, as a user runs it: bin/expo sweep on the fixture pair judged by tiny-reward. */
@ExtendWith(StackExtension.class)
class EvaluationIT {

    private static final ObjectMapper JSON = new ObjectMapper();

    @BeforeAll
    static void models(Stack stack) {
        stack.addModel("tiny-llama-sft", "tiny-llama-sft");
        stack.addModel("tiny-llama-dpo", "tiny-llama-dpo");
        stack.addModel("tiny-reward", "tiny-reward");
    }

    @Test
    void aSweepReportsTheBestAlphaWithNumbersTheResultsFileBearsOut(Stack stack) throws Exception {
        Path dir = Files.createTempDirectory("expo-sweep");
        Path prompts = dir.resolve("prompts.json");
        Files.writeString(prompts, """
                [{"instruction": "Name a color.", "dataset": "e2e"},
                 {"instruction": "Count to three."},
                 {"instruction": "Say hello politely."},
                 {"instruction": "What is a cat?"},
                 {"instruction": "Give one word for happy."}]
                """);
        Path out = dir.resolve("out");
        Cli.Result sweep = Cli.run(stack, "sweep", "--base", "tiny-llama-sft", "--aligned", "tiny-llama-dpo",
                "--alphas", "0,2", "--reward-model", "tiny-reward", "--last-token", "--prompts", prompts.toString(),
                "--max-new-tokens", "8", "--bootstrap", "200", "--out", out.toString());
        assertThat(sweep.exitCode()).as(sweep.stderr()).isZero();
        assertThat(sweep.stdout()).contains("alpha-0", "alpha-2", "best: alpha-", "LC win rate");

        // the run's summary, recomputed here from its results.jsonl
        List<JsonNode> results = Files.readAllLines(out.resolve("results.jsonl")).stream().map(line -> {
            try {
                return JSON.readTree(line);
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        }).toList();
        assertThat(results).hasSize(10);
        Map<String, Double> reference = new HashMap<>();
        results.stream().filter(r -> r.get("variant").asText().equals("alpha-0"))
                .forEach(r -> reference.put(r.get("prompt_id").asText(), r.get("reward").asDouble()));
        JsonNode summary = JSON.readTree(out.resolve("summary.json").toFile());
        for (JsonNode variant : summary.get("variants")) {
            String name = variant.get("variant").asText();
            List<JsonNode> own = results.stream().filter(r -> r.get("variant").asText().equals(name)).toList();
            double mean = own.stream().mapToDouble(r -> r.get("reward").asDouble()).average().orElseThrow();
            double wins = own.stream().mapToDouble(r -> Double.compare(r.get("reward").asDouble(),
                    reference.get(r.get("prompt_id").asText())) > 0 ? 1
                    : r.get("reward").asDouble() == reference.get(r.get("prompt_id").asText()) ? 0.5 : 0).sum();
            assertThat(variant.get("mean_reward").asDouble()).as(name).isCloseTo(mean, within(1e-12));
            assertThat(variant.get("win_rate").asDouble()).as(name).isCloseTo(wins / own.size(), within(1e-12));
            assertThat(variant.get("outputs").asInt()).isEqualTo(5);
        }
        String best = summary.get("best_variant").asText();
        assertThat(sweep.stdout()).contains("best: " + best);

        // AlpacaEval's outputs file per variant, the report and its chart
        JsonNode outputs = JSON.readTree(out.resolve("alpha-2").resolve("model_outputs.json").toFile());
        assertThat(outputs).hasSize(5);
        assertThat(outputs.get(0).get("generator").asText()).isEqualTo("alpha-2");
        assertThat(outputs.get(0).get("dataset").asText()).isEqualTo("e2e");
        assertThat(Files.readString(out.resolve("report.html"))).contains("<svg", best);
        assertThat(out.resolve("report.svg")).isRegularFile();

        // the model the sweep extrapolated is gone from the store; the run's folder holds the same summary
        assertThat(stack.store.resolve("tiny-llama-dpo-expo-2")).doesNotExist();
        Cli.Result list = Cli.run(stack, "eval", "list");
        assertThat(list.stdout()).contains("SUCCEEDED", "best " + best);

        // a judge that is not a reward model: refused at once, no run made
        Cli.Result bad = Cli.run(stack, "sweep", "--base", "tiny-llama-sft", "--aligned", "tiny-llama-dpo",
                "--alphas", "1", "--reward-model", "tiny-llama-sft", "--prompts", prompts.toString());
        assertThat(bad.exitCode()).isEqualTo(1);
        assertThat(bad.stderr()).contains("not a reward model");
        assertThat(Cli.run(stack, "eval", "list").stdout().lines().count()).isEqualTo(list.stdout().lines().count());
    }
}

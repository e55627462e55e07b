package dev.expo.evaluation.engine.runs;

import com.fasterxml.jackson.databind.JsonNode;
import dev.expo.common.ExpoException;
import dev.expo.evaluation.engine.EvaluationSummary;
import dev.expo.evaluation.engine.ScoredOutput;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class EvaluationRunsTest {

    @TempDir
    Path root;

    static List<EvaluationRequest.Prompt> prompts(int n) {
        List<EvaluationRequest.Prompt> prompts = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            prompts.add(new EvaluationRequest.Prompt("p" + i, "instruction " + i, null, null));
        }
        return prompts;
    }

    static EvaluationRequest sweep(int prompts, boolean keep) {
        return new EvaluationRequest(prompts(prompts), List.of(
                new EvaluationRequest.Variant("alpha-0", "dpo", null, null, null, null),
                new EvaluationRequest.Variant("alpha-2", null, "{\"alpha\": 2}", null, null, null),
                new EvaluationRequest.Variant("scale-3", "dpo", null, "lora", 3.0, null)),
                "rm", "alpha-0", true, keep, false, 300, 5);
    }

    static EvaluationRun await(EvaluationRun run) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (!run.state().isFinal() && System.nanoTime() < deadline) {
            Thread.sleep(10);
        }
        assertThat(run.state().isFinal()).as("run finished").isTrue();
        return run;
    }

    @Test
    void aRunScoresEveryPromptOfEveryVariantAndWritesWhatUsersRead() throws Exception {
        FakeBackends backends = new FakeBackends();
        try (EvaluationRuns runs = new EvaluationRuns(root, backends, 4, 2)) {
            EvaluationRun run = await(runs.submit(sweep(12, false)));
            assertThat(run.failure()).isNull();
            assertThat(run.state()).isEqualTo(EvaluationRun.State.SUCCEEDED);
            assertThat(run.outputsDone()).isEqualTo(36).isEqualTo(run.outputsTotal());
            assertThat(backends.maxInFlight.get()).as("generations in flight at once").isBetween(2, 4);

            // the extrapolated variant's model was made once, named for the run, and removed after its outputs
            String made = "eval-" + run.id() + "-alpha-2";
            assertThat(backends.extrapolated).containsExactly(made + " {\"alpha\": 2}");
            assertThat(backends.removed).containsExactly(made);

            // the summary is what the folder's results.jsonl says
            List<ScoredOutput> fromFile = EvaluationRunFolder.readResults(run.dir().resolve("results.jsonl"));
            assertThat(fromFile).hasSize(36);
            assertThat(fromFile.getFirst().variant()).isEqualTo("alpha-0");
            assertThat(fromFile.getFirst().promptId()).isEqualTo("p0");
            EvaluationSummary recomputed = EvaluationSummary.of(fromFile, List.of("alpha-0", "alpha-2", "scale-3"),
                    "alpha-0", EvaluationRunFolder.bootstrapOf(run.request()));
            assertThat(recomputed).isEqualTo(run.summary());
            // dpo says 2 words, alpha 2 says 4 (the reward's best), scale 3 says 6
            assertThat(run.summary().best().variant()).isEqualTo("alpha-2");
            assertThat(run.summary().variants().get(1).againstReference().winRate()).isEqualTo(1.0);
            assertThat(run.summary().variants().get(2).againstReference().ties()).isEqualTo(12);

            JsonNode summary = EvaluationRunFolder.JSON.readTree(run.dir().resolve("summary.json").toFile());
            assertThat(summary.get("best_variant").asText()).isEqualTo("alpha-2");
            assertThat(summary.get("variants").get(1).get("win_rate_ci")).hasSize(2);
            JsonNode outputs = EvaluationRunFolder.JSON.readTree(
                    run.dir().resolve("alpha-2").resolve("model_outputs.json").toFile());
            assertThat(outputs).hasSize(12);
            assertThat(outputs.get(0).get("generator").asText()).isEqualTo("alpha-2");
            assertThat(outputs.get(0).get("instruction").asText()).isEqualTo("instruction 0");
            assertThat(outputs.get(0).get("dataset").asText()).isEqualTo("expo");

            // the report: one self-contained page with the table and the chart, the chart also as well-formed SVG
            String html = Files.readString(run.dir().resolve("report.html"));
            assertThat(html).contains("<svg", "alpha-2", "LC win rate").doesNotContain("<script", "src=");
            org.w3c.dom.Document svg = javax.xml.parsers.DocumentBuilderFactory.newInstance().newDocumentBuilder()
                    .parse(run.dir().resolve("report.svg").toFile());
            assertThat(svg.getElementsByTagName("circle").getLength()).isEqualTo(6);
        }
    }

    @Test
    void aRunStoppedByARestartContinuesWithoutRegeneratingWhatIsDone() throws Exception {
        FakeBackends backends = new FakeBackends();
        backends.allowed.drainPermits();
        backends.allowed.release(10);
        EvaluationRun first;
        try (EvaluationRuns runs = new EvaluationRuns(root, backends, 2, 2)) {
            first = runs.submit(sweep(8, true));
            long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
            while (first.outputsDone() < 10 && System.nanoTime() < deadline) {
                Thread.sleep(10);
            }
            assertThat(first.outputsDone()).isEqualTo(10);
        }   // the gateway stops: the run stays RUNNING in its folder
        Thread.sleep(100);
        assertThat(Files.readString(first.dir().resolve("state.json"))).contains("RUNNING");
        // a kill cut the last line short
        Files.writeString(first.dir().resolve("results.jsonl"), "{\"prompt_id\": \"p", StandardOpenOption.APPEND);

        FakeBackends again = new FakeBackends();
        again.models.addAll(backends.models);   // the model extrapolated before the restart is still in the store
        try (EvaluationRuns runs = new EvaluationRuns(root, again, 2, 2)) {
            List<EvaluationRun> resumed = runs.recover();
            assertThat(resumed).hasSize(1);
            EvaluationRun run = await(resumed.getFirst());
            assertThat(run.state()).isEqualTo(EvaluationRun.State.SUCCEEDED);
            assertThat(run.id()).isEqualTo(first.id());
            assertThat(again.generations.get()).isEqualTo(24 - 10);
            assertThat(again.extrapolated).isEmpty();
            assertThat(EvaluationRunFolder.readResults(run.dir().resolve("results.jsonl"))).hasSize(24);
            assertThat(runs.get(run.id())).isSameAs(run);
        }
        // and a third start finds it finished, with the same summary
        try (EvaluationRuns runs = new EvaluationRuns(root, new FakeBackends(), 2, 2)) {
            assertThat(runs.recover()).isEmpty();
            EvaluationRun read = runs.get(first.id());
            assertThat(read.state()).isEqualTo(EvaluationRun.State.SUCCEEDED);
            assertThat(read.summary().best().variant()).isEqualTo("alpha-2");
        }
    }

    @Test
    void anExtrapolatedModelNamedAndAlreadyInTheStoreIsUsedAndKept() throws Exception {
        FakeBackends backends = new FakeBackends();
        backends.models.add("dpo-expo-a2");
        EvaluationRequest request = new EvaluationRequest(prompts(3), List.of(
                new EvaluationRequest.Variant("alpha-0", "dpo", null, null, null, null),
                new EvaluationRequest.Variant("alpha-2", null, "{\"alpha\": 2}", null, null, null, "dpo-expo-a2",
                        false),
                new EvaluationRequest.Variant("alpha-4", null, "{\"alpha\": 4}", null, null, null, "dpo-expo-a4",
                        false)), "rm", "alpha-0", true, false, false, 100, 0);
        try (EvaluationRuns runs = new EvaluationRuns(root, backends, 2, 2)) {
            EvaluationRun run = await(runs.submit(request));
            assertThat(run.state()).isEqualTo(EvaluationRun.State.SUCCEEDED);
            assertThat(backends.extrapolated).containsExactly("dpo-expo-a4 {\"alpha\": 4}");
            assertThat(backends.removed).containsExactly("dpo-expo-a4");
            assertThat(backends.models).contains("dpo-expo-a2");
        }
    }

    @Test
    void cancellingStopsTheRunAndRemovesTheModelsItMade() throws Exception {
        FakeBackends backends = new FakeBackends();
        backends.allowed.drainPermits();
        backends.allowed.release(10);
        try (EvaluationRuns runs = new EvaluationRuns(root, backends, 2, 2)) {
            EvaluationRun run = runs.submit(sweep(8, false));
            long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
            while (run.outputsDone() < 10 && System.nanoTime() < deadline) {
                Thread.sleep(10);
            }
            runs.cancel(run.id());
            await(run);
            assertThat(run.state()).isEqualTo(EvaluationRun.State.CANCELLED);
            assertThat(backends.removed).containsExactly("eval-" + run.id() + "-alpha-2");
            assertThat(Files.readString(run.dir().resolve("state.json"))).contains("CANCELLED");
            assertThat(run.outputsDone()).isEqualTo(10);
        }
    }

    @Test
    void badRequestsFailAtOnceAndMakeNoRun() {
        FakeBackends backends = new FakeBackends();
        try (EvaluationRuns runs = new EvaluationRuns(root, backends, 2, 2)) {
            EvaluationRequest good = sweep(2, false);
            assertThatThrownBy(() -> runs.submit(new EvaluationRequest(List.of(), good.variants(), "rm", "alpha-0",
                    true, false, false, 100, 0))).isInstanceOf(ExpoException.class).hasMessageContaining("at least one prompt");
            assertThatThrownBy(() -> runs.submit(new EvaluationRequest(good.prompts(), List.of(
                    good.variants().get(0), good.variants().get(0)), "rm", "alpha-0", true, false, false, 100, 0)))
                    .hasMessageContaining("unique");
            assertThatThrownBy(() -> runs.submit(new EvaluationRequest(good.prompts(), good.variants(), "rm",
                    "alpha-9", true, false, false, 100, 0))).hasMessageContaining("must be one of the variants");
            assertThatThrownBy(() -> runs.submit(new EvaluationRequest(good.prompts(), good.variants(), "nope",
                    "alpha-0", true, false, false, 100, 0)))
                    .satisfies(e -> assertThat(((ExpoException) e).kind()).isEqualTo(ExpoException.Kind.NOT_FOUND));
            assertThatThrownBy(() -> runs.submit(new EvaluationRequest(good.prompts(), good.variants(), "sft",
                    "alpha-0", true, false, false, 100, 0))).hasMessageContaining("not a reward model");
            assertThatThrownBy(() -> runs.submit(new EvaluationRequest(good.prompts(), List.of(
                    new EvaluationRequest.Variant("x", "missing", null, null, null, null)), "rm", "x", true, false,
                    false, 100, 0))).hasMessageContaining("no model missing");
            assertThatThrownBy(() -> runs.submit(new EvaluationRequest(good.prompts(), List.of(
                    new EvaluationRequest.Variant("x", "dpo", null, "lora", Double.NaN, null)), "rm", "x", true,
                    false, false, 100, 0))).hasMessageContaining("finite");
            assertThatThrownBy(() -> runs.submit(new EvaluationRequest(List.of(
                    new EvaluationRequest.Prompt("a", "one", null, null), new EvaluationRequest.Prompt("a", "two",
                            null, null)), good.variants(), "rm", "alpha-0", true, false, false, 100, 0)))
                    .hasMessageContaining("ids must be unique");
            assertThat(runs.list()).isEmpty();
            assertThat(root).isEmptyDirectory();
            assertThatThrownBy(() -> runs.get("nothing")).hasMessageContaining("no evaluation run nothing");
        }
    }

    @Test
    void aGenerationThatFailsFailsTheRunWithItsReason() throws Exception {
        FakeBackends backends = new FakeBackends();
        try (EvaluationRuns runs = new EvaluationRuns(root, backends, 2, 2)) {
            EvaluationRun run = runs.submit(sweep(3, false));
            // the model goes missing under the run
            backends.models.remove("dpo");
            await(run);
            assertThat(run.state()).isEqualTo(EvaluationRun.State.FAILED);
            assertThat(run.failure().kind()).isEqualTo(ExpoException.Kind.NOT_FOUND);
            assertThat(run.failure().message()).contains("variant alpha-0, prompt p");
        }
    }
}

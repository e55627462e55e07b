package dev.expo.evaluation.engine.runs;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.expo.common.ExpoException;
import dev.expo.common.store.AtomicFile;
import dev.expo.common.store.ModelStore;
import dev.expo.evaluation.engine.EvaluationReport;
import dev.expo.evaluation.engine.EvaluationSummary;
import dev.expo.evaluation.engine.ScoredOutput;
import dev.expo.evaluation.engine.VariantSummary;
import dev.expo.evaluation.engine.stats.PairedComparison;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A run's folder, {@code <store>/.jobs/evaluation/<id>/}: {@code request.json}, {@code state.json} (replaced whole on
 * each change), {@code results.jsonl} (a line per scored output, appended as they come; the seed's result JSONL), and
 * once the run succeeded {@code summary.json}, {@code <variant>/model_outputs.json} (AlpacaEval's outputs file) and
 * {@code report.html} with its chart as {@code report.svg}.
 */
public final class EvaluationRunFolder {

    static final String REQUEST = "request.json";
    static final String STATE = "state.json";
    public static final String RESULTS = "results.jsonl";
    public static final String SUMMARY = "summary.json";
    public static final String MODEL_OUTPUTS = "model_outputs.json";
    public static final String REPORT = "report.html";
    public static final String CHART = "report.svg";

    static final ObjectMapper JSON = new ObjectMapper()
            .setPropertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE);

    private EvaluationRunFolder() {
    }

    static void create(Path dir, EvaluationRun run) {
        try {
            Path scratch = dir.resolveSibling(".tmp-" + dir.getFileName());
            Files.createDirectories(scratch);
            Files.writeString(scratch.resolve(REQUEST), JSON.writeValueAsString(run.request()) + "\n");
            Files.writeString(scratch.resolve(STATE), stateJson(run));
            Files.createFile(scratch.resolve(RESULTS));
            ModelStore.fsyncTree(scratch);
            Files.move(scratch, dir, StandardCopyOption.ATOMIC_MOVE);
            ModelStore.fsyncDirectory(dir.getParent());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create the run folder " + dir, e);
        }
    }

    static void writeState(EvaluationRun run) {
        try {
            replace(run.dir().resolve(STATE), stateJson(run));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + run.dir().resolve(STATE), e);
        }
    }

    private static String stateJson(EvaluationRun run) throws IOException {
        ObjectNode json = JSON.createObjectNode();
        json.put("id", run.id());
        json.put("state", run.state().name());
        json.put("create_time", run.createTime().toString());
        if (run.startTime() != null) {
            json.put("start_time", run.startTime().toString());
        }
        if (run.endTime() != null) {
            json.put("end_time", run.endTime().toString());
        }
        if (run.failure() != null) {
            ObjectNode error = json.putObject("error");
            error.put("kind", run.failure().kind() == null ? null : run.failure().kind().name());
            error.put("message", run.failure().message());
        }
        return JSON.writerWithDefaultPrettyPrinter().writeValueAsString(json) + "\n";
    }

    /** Appends scored outputs and forces them to disk: a restart never scores them again. */
    static void append(EvaluationRun run, List<ScoredOutput> scored) {
        Path file = run.dir().resolve(RESULTS);
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.WRITE, StandardOpenOption.APPEND)) {
            ByteBuffer lines = ByteBuffer.wrap(jsonl(scored).getBytes(StandardCharsets.UTF_8));
            while (lines.hasRemaining()) {
                channel.write(lines);
            }
            channel.force(false);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot append to " + file, e);
        }
    }

    private static String jsonl(List<ScoredOutput> outputs) {
        StringBuilder lines = new StringBuilder();
        outputs.forEach(o -> lines.append(outputJson(o)).append('\n'));
        return lines.toString();
    }

    /** Rewrites results.jsonl with the run's outputs: a resumed run drops a line a kill cut short. */
    static void rewriteResults(EvaluationRun run) {
        try {
            replace(run.dir().resolve(RESULTS), jsonl(run.outputs()));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot rewrite " + run.dir().resolve(RESULTS), e);
        }
    }

    static ObjectNode outputJson(ScoredOutput output) {
        ObjectNode json = JSON.createObjectNode();
        json.put("prompt_id", output.promptId());
        json.put("variant", output.variant());
        json.put("instruction", output.instruction());
        json.put("output", output.output());
        json.put("reward", output.reward());
        json.put("generated_tokens", output.generatedTokens());
        json.put("finish_reason", output.finishReason());
        json.put("seq_rep_4", output.seqRep());
        return json;
    }

    /** The outputs of a results.jsonl; a line cut short by a kill ends the list (its output is generated again). */
    public static List<ScoredOutput> readResults(Path file) throws IOException {
        List<ScoredOutput> outputs = new ArrayList<>();
        for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
            if (line.isBlank()) {
                continue;
            }
            try {
                JsonNode json = JSON.readTree(line);
                outputs.add(new ScoredOutput(json.get("prompt_id").asText(), json.get("variant").asText(),
                        json.get("instruction").asText(), json.get("output").asText(), json.get("reward").asDouble(),
                        json.get("generated_tokens").asInt(), json.get("finish_reason").asText(),
                        json.get("seq_rep_4").asDouble()));
            } catch (IOException | RuntimeException e) {
                break;
            }
        }
        return outputs;
    }

    /**
     * The files users read, written when the run succeeds: results.jsonl in (variant, prompt) order, summary.json and
     * each variant's model_outputs.json, under {@code dir} (the run's folder, or the folder a CLI was told).
     */
    public static void writeReport(Path dir, EvaluationRequest request, List<ScoredOutput> outputs,
            EvaluationSummary summary) throws IOException {
        Files.createDirectories(dir);
        Map<String, Integer> variantOrder = new HashMap<>();
        request.variants().forEach(v -> variantOrder.put(v.name(), variantOrder.size()));
        Map<String, Integer> promptOrder = new HashMap<>();
        Map<String, EvaluationRequest.Prompt> prompts = new HashMap<>();
        request.prompts().forEach(p -> {
            promptOrder.put(p.id(), promptOrder.size());
            prompts.put(p.id(), p);
        });
        List<ScoredOutput> ordered = new ArrayList<>(outputs);
        ordered.sort(Comparator.comparing((ScoredOutput o) -> variantOrder.getOrDefault(o.variant(), -1))
                .thenComparing(o -> promptOrder.getOrDefault(o.promptId(), -1)));
        replace(dir.resolve(RESULTS), jsonl(ordered));
        for (EvaluationRequest.Variant variant : request.variants()) {
            ArrayNode file = JSON.createArrayNode();
            for (ScoredOutput output : ordered) {
                if (output.variant().equals(variant.name())) {
                    EvaluationRequest.Prompt prompt = prompts.get(output.promptId());
                    ObjectNode entry = file.addObject();
                    entry.put("instruction", output.instruction());
                    entry.put("output", output.output());
                    entry.put("generator", variant.name());
                    entry.put("dataset", prompt == null || prompt.dataset() == null ? "expo" : prompt.dataset());
                }
            }
            Path variantDir = dir.resolve(variant.name());
            Files.createDirectories(variantDir);
            replace(variantDir.resolve(MODEL_OUTPUTS),
                    JSON.writerWithDefaultPrettyPrinter().writeValueAsString(file) + "\n");
        }
        replace(dir.resolve(SUMMARY), JSON.writerWithDefaultPrettyPrinter().writeValueAsString(summaryJson(summary))
                + "\n");
        replace(dir.resolve(REPORT), EvaluationReport.html(summary, "Evaluation: " + String.join(", ",
                request.variants().stream().map(EvaluationRequest.Variant::name).toList()) + " scored by "
                + request.rewardModel()));
        replace(dir.resolve(CHART), EvaluationReport.svg(summary) + "\n");
    }

    static ObjectNode summaryJson(EvaluationSummary summary) {
        ObjectNode json = JSON.createObjectNode();
        json.put("reference_variant", summary.referenceVariant());
        json.put("best_variant", summary.best().variant());
        ObjectNode bootstrap = json.putObject("bootstrap");
        bootstrap.put("resamples", summary.bootstrap().resamples());
        bootstrap.put("seed", summary.bootstrap().seed());
        bootstrap.put("confidence", summary.bootstrap().confidence());
        ArrayNode variants = json.putArray("variants");
        for (VariantSummary v : summary.variants()) {
            ObjectNode entry = variants.addObject();
            entry.put("variant", v.variant());
            entry.put("outputs", v.outputs());
            number(entry, "mean_reward", v.reward().mean());
            number(entry, "reward_standard_error", v.reward().standardError());
            interval(entry, "reward_ci", v.reward().lower(), v.reward().upper());
            PairedComparison c = v.againstReference();
            if (c != null) {
                entry.put("paired_prompts", c.count());
                entry.put("wins", c.wins());
                entry.put("losses", c.losses());
                entry.put("ties", c.ties());
                number(entry, "win_rate", c.winRate());
                number(entry, "standard_error", c.standardError());
                interval(entry, "win_rate_ci", c.winRateInterval().lower(), c.winRateInterval().upper());
                number(entry, "length_controlled_win_rate", c.lengthControlled().winRate());
                interval(entry, "length_controlled_win_rate_ci", c.lengthControlledInterval().lower(),
                        c.lengthControlledInterval().upper());
                number(entry, "length_weight", c.lengthControlled().lengthWeight());
            }
            number(entry, "mean_generated_tokens", v.meanGeneratedTokens());
            number(entry, "mean_characters", v.meanCharacters());
            number(entry, "length_limit_share", v.lengthLimitShare());
            number(entry, "mean_seq_rep_4", v.meanSeqRep());
            number(entry, "repeating_share", v.repeatingShare());
        }
        return json;
    }

    /** JSON has no NaN: an unknown figure is null. */
    private static void number(ObjectNode json, String field, double value) {
        if (Double.isFinite(value)) {
            json.put(field, value);
        } else {
            json.putNull(field);
        }
    }

    private static void interval(ObjectNode json, String field, double lower, double upper) {
        ArrayNode pair = json.putArray(field);
        for (double end : new double[] {lower, upper}) {
            if (Double.isFinite(end)) {
                pair.add(end);
            } else {
                pair.addNull();
            }
        }
    }

    private static void replace(Path file, String content) throws IOException {
        AtomicFile.replace(file, content.getBytes(StandardCharsets.UTF_8));
    }

    /** Reads a run folder back; null when it is not a whole run folder (a crash mid-create leaves none). */
    static EvaluationRun read(Path dir) {
        if (!Files.isRegularFile(dir.resolve(STATE)) || !Files.isRegularFile(dir.resolve(REQUEST))) {
            return null;
        }
        try {
            JsonNode state = JSON.readTree(dir.resolve(STATE).toFile());
            EvaluationRequest request = JSON.readValue(dir.resolve(REQUEST).toFile(), EvaluationRequest.class);
            EvaluationRun run = new EvaluationRun(state.get("id").asText(), request, dir,
                    Instant.parse(state.get("create_time").asText()),
                    EvaluationRun.State.valueOf(state.get("state").asText()));
            List<ScoredOutput> outputs = readResults(dir.resolve(RESULTS));
            JsonNode error = state.get("error");
            EvaluationRun.Failure failure = error == null ? null : new EvaluationRun.Failure(
                    error.path("kind").isTextual() ? ExpoException.Kind.valueOf(error.get("kind").asText()) : null,
                    error.path("message").asText());
            EvaluationSummary summary = null;
            if (run.state() == EvaluationRun.State.SUCCEEDED) {
                summary = EvaluationSummary.of(outputs, request.variants().stream()
                        .map(EvaluationRequest.Variant::name).toList(), request.referenceVariant(),
                        bootstrapOf(request));
            }
            run.restore(instant(state, "start_time"), instant(state, "end_time"), failure, outputs, summary);
            return run;
        } catch (IOException | RuntimeException e) {
            throw new IllegalStateException("cannot read the evaluation run in " + dir + ": " + e.getMessage(), e);
        }
    }

    static PairedComparison.Bootstrap bootstrapOf(EvaluationRequest request) {
        return new PairedComparison.Bootstrap(request.bootstrapResamples(), request.seed(),
                dev.expo.evaluation.engine.stats.MeanInterval.CONFIDENCE);
    }

    private static Instant instant(JsonNode state, String field) {
        JsonNode value = state.get(field);
        return value == null || value.isNull() ? null : Instant.parse(value.asText());
    }
}

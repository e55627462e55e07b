package dev.expo.training.engine.jobs;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.expo.common.ExpoException;
import dev.expo.common.store.AtomicFile;
import dev.expo.common.store.ModelStore;
import dev.expo.training.engine.ddpo.DdpoTrainer;

import java.io.BufferedWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;

/**
 * A job's folder, {@code <store>/.jobs/training/<id>/}: {@code request.json}, {@code state.json} (replaced whole on
 * each change), {@code metrics.jsonl} (a line per step, appended as they come) and its {@code checkpoint-STEP/}
 * folders ({@link TrainingCheckpoint}).
 */
final class TrainingJobFolder {

    static final String REQUEST = "request.json";
    static final String STATE = "state.json";
    static final String METRICS = "metrics.jsonl";
    private static final ObjectMapper JSON = new ObjectMapper().findAndRegisterModules();

    private TrainingJobFolder() {
    }

    static void create(Path dir, TrainingJob job) {
        try {
            Path scratch = dir.resolveSibling(".tmp-" + dir.getFileName());
            Files.createDirectories(scratch);
            Files.writeString(scratch.resolve(REQUEST), JSON.writerWithDefaultPrettyPrinter()
                    .writeValueAsString(job.request()) + "\n");
            Files.writeString(scratch.resolve(STATE), stateJson(job));
            Files.createFile(scratch.resolve(METRICS));
            ModelStore.fsyncTree(scratch);
            Files.move(scratch, dir, StandardCopyOption.ATOMIC_MOVE);
            ModelStore.fsyncDirectory(dir.getParent());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create the job folder " + dir, e);
        }
    }

    static void writeState(TrainingJob job) {
        try {
            AtomicFile.replace(job.dir().resolve(STATE), stateJson(job).getBytes(StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + job.dir().resolve(STATE), e);
        }
    }

    private static String stateJson(TrainingJob job) throws IOException {
        ObjectNode json = JSON.createObjectNode();
        json.put("id", job.id());
        json.put("state", job.state().name());
        json.put("create_time", job.createTime().toString());
        if (job.startTime() != null) {
            json.put("start_time", job.startTime().toString());
        }
        if (job.endTime() != null) {
            json.put("end_time", job.endTime().toString());
        }
        if (job.failure() != null) {
            ObjectNode error = json.putObject("error");
            error.put("kind", job.failure().kind() == null ? null : job.failure().kind().name());
            error.put("message", job.failure().message());
        }
        ArrayNode checkpoints = json.putArray("checkpoints");
        job.checkpoints().forEach(checkpoints::add);
        return JSON.writerWithDefaultPrettyPrinter().writeValueAsString(json) + "\n";
    }

    static void appendStep(TrainingJob job, TrainingJob.Step step) {
        try (BufferedWriter out = Files.newBufferedWriter(job.dir().resolve(METRICS), StandardCharsets.UTF_8,
                StandardOpenOption.APPEND, StandardOpenOption.CREATE)) {
            out.write(stepJson(step).toString());
            out.write('\n');
        } catch (IOException e) {
            throw new UncheckedIOException("cannot append to " + job.dir().resolve(METRICS), e);
        }
    }

    /** Rewrites metrics.jsonl with the job's steps (a resumed job drops those past its checkpoint). */
    static void rewriteSteps(TrainingJob job) {
        Path scratch = job.dir().resolve(".tmp-" + METRICS);
        try (BufferedWriter out = Files.newBufferedWriter(scratch, StandardCharsets.UTF_8)) {
            for (TrainingJob.Step step : job.steps()) {
                out.write(stepJson(step).toString());
                out.write('\n');
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + scratch, e);
        }
        try {
            Files.move(scratch, job.dir().resolve(METRICS), StandardCopyOption.ATOMIC_MOVE,
                    StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot replace " + job.dir().resolve(METRICS), e);
        }
    }

    /** HF's log_history entries for trainer_state.json: the steps up to {@code step}. */
    static ArrayNode logHistory(TrainingJob job, long step) {
        ArrayNode history = JSON.createArrayNode();
        for (TrainingJob.Step s : job.steps()) {
            if (s.step() <= step) {
                history.add(stepJson(s));
            }
        }
        return history;
    }

    static ObjectNode stepJson(TrainingJob.Step step) {
        DdpoTrainer.StepMetrics m = step.metrics();
        ObjectNode json = JSON.createObjectNode();
        json.put("step", m.step());
        json.put("total_steps", step.totalSteps());
        json.put("epoch", step.epoch());
        json.put("loss", m.loss());
        json.put("rewards/chosen", m.chosenReward());
        json.put("rewards/rejected", m.rejectedReward());
        json.put("rewards/accuracies", m.accuracy());
        json.put("rewards/margins", m.margin());
        json.put("logps/policy_chosen", m.policyChosen());
        json.put("logps/policy_rejected", m.policyRejected());
        json.put("logps/reference_chosen", m.referenceChosen());
        json.put("logps/reference_rejected", m.referenceRejected());
        json.put("learning_rate", m.learningRate());
        json.put("grad_norm", m.gradNorm());
        json.put("pairs", m.pairs());
        json.put("tokens", m.tokens());
        json.put("seconds", m.seconds());
        json.put("micro_batch", m.microBatch());
        json.put("micro_batch_halvings", m.halvings());
        json.put("loss_scale", m.lossScale());
        json.put("skipped", m.skipped());
        json.put("time", step.time().toString());
        return json;
    }

    private static TrainingJob.Step step(JsonNode json) {
        return new TrainingJob.Step(new DdpoTrainer.StepMetrics(json.get("step").asLong(), json.get("loss").asDouble(),
                json.get("rewards/chosen").asDouble(), json.get("rewards/rejected").asDouble(),
                json.get("rewards/accuracies").asDouble(), json.get("rewards/margins").asDouble(),
                json.get("logps/policy_chosen").asDouble(), json.get("logps/policy_rejected").asDouble(),
                json.get("logps/reference_chosen").asDouble(), json.get("logps/reference_rejected").asDouble(),
                json.get("learning_rate").asDouble(), json.get("grad_norm").asDouble(), json.get("pairs").asInt(),
                json.get("tokens").asLong(), json.get("seconds").asDouble(), json.path("micro_batch").asInt(0),
                json.path("micro_batch_halvings").asInt(0), json.path("loss_scale").asDouble(1),
                json.path("skipped").asBoolean(false)), json.get("epoch").asDouble(),
                json.get("total_steps").asLong(), Instant.parse(json.get("time").asText()));
    }

    /** Reads a job folder back; null when it is not a whole job folder (a crash mid-create leaves none). */
    static TrainingJob read(Path dir) {
        if (!Files.isRegularFile(dir.resolve(STATE)) || !Files.isRegularFile(dir.resolve(REQUEST))) {
            return null;
        }
        try {
            JsonNode state = JSON.readTree(dir.resolve(STATE).toFile());
            TrainingRequest request = JSON.readValue(dir.resolve(REQUEST).toFile(), TrainingRequest.class);
            TrainingJob job = new TrainingJob(state.get("id").asText(), request, dir,
                    Instant.parse(state.get("create_time").asText()),
                    TrainingJob.State.valueOf(state.get("state").asText()));
            List<TrainingJob.Step> steps = new ArrayList<>();
            if (Files.isRegularFile(dir.resolve(METRICS))) {
                for (String line : Files.readAllLines(dir.resolve(METRICS))) {
                    if (!line.isBlank()) {
                        try {
                            steps.add(step(JSON.readTree(line)));
                        } catch (IOException | RuntimeException e) {
                            break; // a line cut by a kill: the steps after the checkpoint are redone anyway
                        }
                    }
                }
            }
            List<String> checkpoints = new ArrayList<>();
            state.path("checkpoints").forEach(c -> checkpoints.add(c.asText()));
            JsonNode error = state.get("error");
            TrainingJob.Failure failure = error == null ? null : new TrainingJob.Failure(
                    error.path("kind").isTextual() ? ExpoException.Kind.valueOf(error.get("kind").asText()) : null,
                    error.path("message").asText());
            job.restore(instant(state, "start_time"), instant(state, "end_time"), failure, steps, checkpoints);
            return job;
        } catch (IOException | RuntimeException e) {
            throw new IllegalStateException("cannot read the training job in " + dir + ": " + e.getMessage(), e);
        }
    }

    private static Instant instant(JsonNode json, String field) {
        return json.hasNonNull(field) ? Instant.parse(json.get(field).asText()) : null;
    }
}

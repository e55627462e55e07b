package dev.expo.training.engine.jobs;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.expo.checkpoint.DType;
import dev.expo.checkpoint.SafetensorsFile;
import dev.expo.checkpoint.SafetensorsWriter;
import dev.expo.checkpoint.Tensor;
import dev.expo.checkpoint.TensorInfo;
import dev.expo.common.ExpoException;
import dev.expo.common.store.ModelStore;
import dev.expo.modeling.lora.LoraAdapter;
import dev.expo.training.engine.ddpo.DdpoTrainer;
import dev.expo.training.engine.ddpo.TrainableParameters;
import dev.expo.training.engine.optim.AdamW;
import dev.expo.training.engine.optim.DynamicLossScaler;
import dev.expo.training.engine.optim.LearningRateSchedule;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;

/**
 * A training run's state after an optimizer step, enough to continue it to the same bits: the trainable tensors, the
 * optimizer's moments and step count, and where in the data the run stands. On disk it is HF Trainer's
 * {@code checkpoint-STEP/} layout with safetensors and JSON where the Trainer writes pickles:
 * <pre>
 *   adapter_model.safetensors, adapter_config.json   the PEFT adapter (PEFT's key names)
 *   projector.safetensors                            weight [llm_hidden, vision_hidden], bias
 *   optimizer.safetensors                            NAME.exp_avg / NAME.exp_avg_sq; metadata "step"
 *   scheduler.json                                   the schedule and the next step it gives a rate for
 *   rng_state.json                                   the shuffle's seed (each epoch's order is derived from it)
 *   scaler.json                                      FP16 mixed precision only: GradScaler's scale and tracker
 *   trainer_state.json                               global_step, epoch, the data cursor, log_history
 * </pre>
 * Written into a scratch folder beside its place, flushed, then renamed, so a checkpoint folder is whole or absent.
 */
public record TrainingCheckpoint(long step, int epoch, int batchInEpoch, Map<String, float[]> values,
                                 Map<String, long[]> shapes, Map<String, AdamW.Moments> moments, long optimizerSteps,
                                 double lossScale, int scalerCleanSteps) {

    private static final ObjectMapper JSON = new ObjectMapper();
    public static final String PREFIX = "checkpoint-";

    /** A copy of the run's current state (the run goes on changing its own arrays); {@code scaler} may be null. */
    static TrainingCheckpoint of(long step, int epoch, int batchInEpoch, Map<String, float[]> values,
                                 Map<String, long[]> shapes, AdamW adamW, DynamicLossScaler scaler) {
        Map<String, float[]> copy = new LinkedHashMap<>();
        values.forEach((name, v) -> copy.put(name, v.clone()));
        Map<String, AdamW.Moments> moments = new LinkedHashMap<>();
        adamW.state().forEach((name, m) -> moments.put(name, new AdamW.Moments(m.expAvg().clone(),
                m.expAvgSq().clone())));
        return new TrainingCheckpoint(step, epoch, batchInEpoch, copy, Map.copyOf(shapes), moments, adamW.steps(),
                scaler == null ? 0 : scaler.scale(), scaler == null ? 0 : scaler.cleanSteps());
    }

    /** Writes {@code <jobDir>/checkpoint-STEP/}; an existing one of that step is kept (it holds the same state). */
    public Path write(Path jobDir, LoraAdapter.LoraConfig lora, LearningRateSchedule schedule, TrainingRequest request,
                      int stepsPerEpoch, ArrayNode logHistory) {
        Path target = jobDir.resolve(PREFIX + step);
        if (Files.isDirectory(target)) {
            return target;
        }
        Path scratch = jobDir.resolve(".tmp-" + PREFIX + step + "-" + UUID.randomUUID());
        try {
            Files.createDirectories(scratch);
            List<Tensor> optimizer = new ArrayList<>();
            values.forEach((name, v) -> {
                AdamW.Moments m = moments.get(name);
                if (m != null) {
                    optimizer.add(Tensor.fromFloats(name + ".exp_avg", DType.F32, shapes.get(name), m.expAvg()));
                    optimizer.add(Tensor.fromFloats(name + ".exp_avg_sq", DType.F32, shapes.get(name),
                            m.expAvgSq()));
                }
            });
            SafetensorsWriter.write(scratch.resolve("adapter_model.safetensors"),
                    TrainableParameters.adapterTensors(values, shapes));
            lora.write(scratch);
            TrainableParameters.writeProjector(scratch.resolve("projector.safetensors"), values, shapes);
            SafetensorsWriter.write(scratch.resolve("optimizer.safetensors"), optimizer,
                    Map.of("step", Long.toString(optimizerSteps), "optimizer", "torch.optim.AdamW"));
            ObjectNode scheduler = JSON.createObjectNode();
            scheduler.put("kind", schedule.kind().name().toLowerCase());
            scheduler.put("peak_lr", schedule.peak());
            scheduler.put("warmup_steps", schedule.warmup());
            scheduler.put("total_steps", schedule.total());
            scheduler.put("last_epoch", optimizerSteps);
            writeJson(scratch.resolve("scheduler.json"), scheduler);
            ObjectNode rng = JSON.createObjectNode();
            rng.put("seed", request.seed());
            rng.put("shuffle", request.shuffle());
            rng.put("epoch_order", "java.util.Random(seed * 1000003 + epoch) over the dataset's rows");
            writeJson(scratch.resolve("rng_state.json"), rng);
            if (lossScale > 0) {
                ObjectNode scaler = JSON.createObjectNode();   // GradScaler.state_dict()'s keys
                scaler.put("scale", lossScale);
                scaler.put("growth_factor", 2.0);
                scaler.put("backoff_factor", 0.5);
                scaler.put("growth_interval", 2000);
                scaler.put("_growth_tracker", scalerCleanSteps);
                writeJson(scratch.resolve("scaler.json"), scaler);
            }
            ObjectNode state = JSON.createObjectNode();
            state.put("global_step", step);
            // Fractional, as HF's; the exact position is data_cursor.
            state.put("epoch", epoch + (double) batchInEpoch / stepsPerEpoch);
            state.put("max_steps", schedule.total());
            state.put("num_train_epochs", request.epochs());
            state.put("train_batch_size", request.microBatch());
            state.put("global_batch_size", request.globalBatch());
            state.put("save_steps", request.saveEvery());
            ObjectNode cursor = state.putObject("data_cursor");
            cursor.put("epoch", epoch);
            cursor.put("batch", batchInEpoch);
            state.set("log_history", logHistory);
            writeJson(scratch.resolve("trainer_state.json"), state);
            ModelStore.fsyncTree(scratch);
            Files.move(scratch, target, StandardCopyOption.ATOMIC_MOVE);
            ModelStore.fsyncDirectory(jobDir);
            return target;
        } catch (IOException e) {
            ModelStore.deleteTree(scratch);
            throw new UncheckedIOException("cannot write checkpoint " + target, e);
        } catch (RuntimeException e) {
            ModelStore.deleteTree(scratch);
            throw e;
        }
    }

    /** Reads a checkpoint folder written by {@link #write}. */
    public static TrainingCheckpoint read(Path dir) {
        try {
            var state = JSON.readTree(dir.resolve("trainer_state.json").toFile());
            Map<String, float[]> values = new LinkedHashMap<>();
            Map<String, long[]> shapes = new LinkedHashMap<>();
            Map<String, AdamW.Moments> moments = new LinkedHashMap<>();
            try (SafetensorsFile adapter = SafetensorsFile.open(dir.resolve("adapter_model.safetensors"));
                 SafetensorsFile projector = SafetensorsFile.open(dir.resolve("projector.safetensors"));
                 SafetensorsFile optimizer = SafetensorsFile.open(dir.resolve("optimizer.safetensors"))) {
                for (TensorInfo info : adapter.tensors()) {
                    values.put(info.name(), adapter.tensor(info.name()).toFloats());
                    shapes.put(info.name(), info.shape());
                }
                values.put(DdpoTrainer.PROJECTOR_WEIGHT, projector.tensor("weight").toFloats());
                shapes.put(DdpoTrainer.PROJECTOR_WEIGHT, projector.info("weight").shape());
                values.put(DdpoTrainer.PROJECTOR_BIAS, projector.tensor("bias").toFloats());
                shapes.put(DdpoTrainer.PROJECTOR_BIAS, projector.info("bias").shape());
                for (String name : values.keySet()) {
                    if (optimizer.contains(name + ".exp_avg")) {
                        moments.put(name, new AdamW.Moments(optimizer.tensor(name + ".exp_avg").toFloats(),
                                optimizer.tensor(name + ".exp_avg_sq").toFloats()));
                    }
                }
                long optimizerSteps = Long.parseLong(optimizer.metadata().getOrDefault("step", "0"));
                var scaler = Files.isRegularFile(dir.resolve("scaler.json"))
                        ? JSON.readTree(dir.resolve("scaler.json").toFile()) : JSON.createObjectNode();
                return new TrainingCheckpoint(state.get("global_step").asLong(),
                        state.path("data_cursor").path("epoch").asInt(),
                        state.path("data_cursor").path("batch").asInt(), values, shapes, moments, optimizerSteps,
                        scaler.path("scale").asDouble(0), scaler.path("_growth_tracker").asInt(0));
            }
        } catch (IOException | RuntimeException e) {
            throw ExpoException.failedPrecondition("checkpoint " + dir + " cannot be read (" + e.getMessage() + ")");
        }
    }

    /** Whether this checkpoint was taken after the run's last step. */
    public static boolean isLast(Path dir) {
        try {
            var state = JSON.readTree(dir.resolve("trainer_state.json").toFile());
            return state.path("global_step").asLong() >= state.path("max_steps").asLong();
        } catch (IOException e) {
            return false;
        }
    }

    /** The newest whole checkpoint in a job folder, or null. */
    public static Path latest(Path jobDir) {
        Path best = null;
        long bestStep = -1;
        try (var children = Files.list(jobDir)) {
            for (Path child : children.toList()) {
                String name = child.getFileName().toString();
                if (name.startsWith(PREFIX) && Files.isDirectory(child)) {
                    try {
                        long step = Long.parseLong(name.substring(PREFIX.length()));
                        if (step > bestStep) {
                            bestStep = step;
                            best = child;
                        }
                    } catch (NumberFormatException ignored) {
                        // not one of ours
                    }
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list " + jobDir, e);
        }
        return best;
    }

    private static void writeJson(Path file, Object node) throws IOException {
        Files.writeString(file, JSON.writerWithDefaultPrettyPrinter().writeValueAsString(node) + "\n");
    }
}

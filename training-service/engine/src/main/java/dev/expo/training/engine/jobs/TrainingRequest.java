package dev.expo.training.engine.jobs;

import dev.expo.common.ExpoException;
import dev.expo.training.engine.optim.LearningRateSchedule;

import java.util.List;

/**
 * What a training job is asked to do, with the seed's defaults ({@link #seedDefaults}: lr 2e-6, 3 epochs, global 8 /
 * micro 2, wd 0.01, warmup 0.03, beta 0.1, gamma 2.0). Range checks here; model and dataset checks when the job is
 * planned against the store.
 *
 * @param projector  a projector file (safetensors weight / bias) to start from, or null for a new one
 * @param adapter    a PEFT adapter folder to start from, or null for a new one (lora settings then apply)
 * @param maxSteps   0 = run {@code epochs} epochs
 * @param saveEvery  0 = only at each epoch's end
 * @param mixedPrecision FP16 mixed precision (a GPU's FP16 forward, float32 master weights, dynamic loss scaling);
 *                       false = FP32
 */
public record TrainingRequest(String languageModel, String visionTower, String projector, String adapter,
                              String dataset, String outputModel, int loraRank, double loraAlpha,
                              List<String> loraTargets, double loraDropout, double learningRate, int epochs,
                              long maxSteps, int globalBatch, int microBatch, double weightDecay, double warmupRatio,
                              LearningRateSchedule.Kind schedule, double beta, double gamma, boolean average,
                              double maxGradNorm, boolean shuffle, long seed, int saveEvery, int visionLayer,
                              boolean mixedPrecision) {

    public TrainingRequest {
        loraTargets = List.copyOf(loraTargets);
        check(!(learningRate > 0 && learningRate <= 1), "learning_rate", learningRate, "must be in (0, 1]");
        check(!(beta > 0 && Double.isFinite(beta)), "beta", beta, "must be positive");
        check(!(gamma > 0 && Double.isFinite(gamma)), "gamma", gamma, "must be positive (1 = plain DPO)");
        check(globalBatch < 1, "global_batch_size", globalBatch, "must be at least 1");
        check(microBatch < 1 || microBatch > globalBatch, "micro_batch_size", microBatch,
                "must be in [1, global_batch_size]");
        check(globalBatch % microBatch != 0, "global_batch_size", globalBatch, "must be a multiple of the micro "
                + "batch size " + microBatch + " (accumulation = global / micro)");
        check(epochs < 1 && maxSteps < 1, "epochs", epochs, "must be at least 1 (or give max_steps)");
        check(maxSteps < 0, "max_steps", maxSteps, "must be >= 0");
        check(!(weightDecay >= 0 && weightDecay < 1), "weight_decay", weightDecay, "must be in [0, 1)");
        check(!(warmupRatio >= 0 && warmupRatio < 1), "warmup_ratio", warmupRatio, "must be in [0, 1)");
        check(!(maxGradNorm >= 0 && Double.isFinite(maxGradNorm)), "max_grad_norm", maxGradNorm, ">= 0 (0 = off)");
        check(loraRank < 1, "lora.rank", loraRank, "must be at least 1");
        check(!(loraAlpha > 0), "lora.alpha", loraAlpha, "must be positive");
        check(loraTargets.isEmpty(), "lora.target_modules", "[]", "name at least one module (e.g. q_proj,v_proj)");
        check(!(loraDropout >= 0 && loraDropout < 1), "lora.dropout", loraDropout, "must be in [0, 1)");
        check(saveEvery < 0, "save_every", saveEvery, "must be >= 0");
    }

    private static void check(boolean bad, String field, Object value, String expectation) {
        if (bad) {
            throw ExpoException.invalidArgument(field, value, expectation);
        }
    }
}

package dev.expo.training.engine.optim;

import dev.expo.common.ExpoException;

/**
 * HF transformers' schedules (optimization.py): a linear warmup over {@code warmup} steps, then linear decay to 0,
 * half a cosine to 0, or constant. {@link #at(long)} is the rate of the 0-based optimizer step (HF's
 * LambdaLR: step 0 of a warmup has rate 0). Warmup steps are {@code ceil(ratio * total)}, as
 * {@code TrainingArguments.get_warmup_steps}.
 */
public record LearningRateSchedule(Kind kind, double peak, long warmup, long total) {

    public enum Kind { LINEAR, COSINE, CONSTANT }

    public LearningRateSchedule {
        if (!(peak > 0) || !Double.isFinite(peak) || peak > 1) {
            throw ExpoException.invalidArgument("learning_rate", peak, "must be in (0, 1] (the seed uses 2e-6)");
        }
        if (total < 1 || warmup < 0) {
            throw ExpoException.invalidArgument("total steps / warmup", total + " / " + warmup, "invalid");
        }
    }

    public static LearningRateSchedule of(Kind kind, double peak, double warmupRatio, long total) {
        if (!(warmupRatio >= 0 && warmupRatio < 1)) {
            throw ExpoException.invalidArgument("warmup_ratio", warmupRatio, "must be in [0, 1)");
        }
        return new LearningRateSchedule(kind, peak, (long) Math.ceil(warmupRatio * total), total);
    }

    public double at(long step) {
        if (step < warmup) {
            return peak * step / Math.max(1, warmup);
        }
        double progress = (double) (step - warmup) / Math.max(1, total - warmup);
        return switch (kind) {
            case CONSTANT -> peak;
            case LINEAR -> peak * Math.max(0, (double) (total - step) / Math.max(1, total - warmup));
            case COSINE -> peak * Math.max(0, 0.5 * (1 + Math.cos(Math.PI * progress)));
        };
    }
}

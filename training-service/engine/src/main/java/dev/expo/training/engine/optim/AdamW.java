package dev.expo.training.engine.optim;

import dev.expo.common.ExpoException;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * {@code torch.optim.AdamW} (single-tensor path, amsgrad off), on float32 master weights held in Java, one step at a
 * time, in torch's order of operations so the result matches it to float rounding:
 * <pre>
 *   p *= 1 - lr * wd                              (decoupled decay, on every tensor: one parameter group)
 *   m  = b1 * m + (1 - b1) * g
 *   v  = b2 * v + (1 - b2) * g * g
 *   denom = sqrt(v) / sqrt(1 - b2^t) + eps        (bias corrections in double, as Python floats)
 *   p += -(lr / (1 - b1^t)) * m / denom
 * </pre>
 * DJL's own adamW folds epsilon into the learning rate, zeroes gradients and cannot save its state; this one keeps
 * its moments for the checkpoint ({@link #state}).
 */
public final class AdamW {

    public record Settings(double beta1, double beta2, double eps, double weightDecay) {
        public static Settings torchDefaults(double weightDecay) {
            return new Settings(0.9, 0.999, 1e-8, weightDecay);
        }

        public Settings {
            if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1) || !(eps >= 0) || !(weightDecay >= 0)) {
                throw ExpoException.invalidArgument("AdamW betas must be in [0, 1), eps and weight_decay >= 0 (got "
                        + beta1 + ", " + beta2 + ", " + eps + ", " + weightDecay + ")");
            }
        }
    }

    /** One tensor's moments. */
    public record Moments(float[] expAvg, float[] expAvgSq) {
    }

    private final Settings settings;
    private final Map<String, Moments> state = new LinkedHashMap<>();
    private long step;

    public AdamW(Settings settings) {
        this.settings = settings;
    }

    /** Restores a checkpoint's state (moments by tensor name, and the number of steps taken). */
    public void restore(Map<String, Moments> moments, long steps) {
        state.clear();
        state.putAll(moments);
        this.step = steps;
    }

    public Map<String, Moments> state() {
        return state;
    }

    public long steps() {
        return step;
    }

    /** One step over every tensor: {@code params} are updated in place from {@code grads} (same names, same sizes). */
    public void step(Map<String, float[]> params, Map<String, float[]> grads, double lr) {
        step++;
        double bias1 = 1 - Math.pow(settings.beta1(), step);
        double bias2 = 1 - Math.pow(settings.beta2(), step);
        float stepSize = (float) (lr / bias1);
        float bias2Sqrt = (float) Math.sqrt(bias2);
        float decay = (float) (1 - lr * settings.weightDecay());
        float b1 = (float) settings.beta1();
        float oneMinusB1 = (float) (1 - settings.beta1());
        float b2 = (float) settings.beta2();
        float oneMinusB2 = (float) (1 - settings.beta2());
        float eps = (float) settings.eps();
        for (Map.Entry<String, float[]> entry : params.entrySet()) {
            float[] p = entry.getValue();
            float[] g = grads.get(entry.getKey());
            if (g == null || g.length != p.length) {
                throw new IllegalArgumentException("no gradient of the right size for " + entry.getKey());
            }
            Moments moments = state.computeIfAbsent(entry.getKey(), k -> new Moments(new float[p.length],
                    new float[p.length]));
            float[] m = moments.expAvg();
            float[] v = moments.expAvgSq();
            for (int i = 0; i < p.length; i++) {
                p[i] *= decay;
                m[i] = m[i] * b1 + oneMinusB1 * g[i];   // torch 1.13: exp_avg.mul_(b1).add_(g, alpha=1 - b1)
                v[i] = v[i] * b2 + oneMinusB2 * g[i] * g[i];
                float denom = (float) Math.sqrt(v[i]) / bias2Sqrt + eps;
                p[i] += -stepSize * (m[i] / denom);
            }
        }
    }
}

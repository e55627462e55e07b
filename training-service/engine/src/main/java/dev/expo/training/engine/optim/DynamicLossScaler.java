package dev.expo.training.engine.optim;

import java.util.Collection;

/**
 * torch.cuda.amp.GradScaler's dynamic loss scaling, for FP16 mixed precision: the loss is multiplied by the scale
 * before backward; gradients are unscaled before clipping; a step whose gradients hold an inf or NaN is skipped and
 * the scale halved; after {@code growthInterval} clean steps in a row the scale doubles. Defaults are torch's
 * (65536, x2 after 2000, x0.5).
 */
public final class DynamicLossScaler {

    private double scale;
    private final double growthFactor;
    private final double backoffFactor;
    private final int growthInterval;
    private int cleanSteps;

    public DynamicLossScaler(double initialScale, double growthFactor, double backoffFactor, int growthInterval) {
        this.scale = initialScale;
        this.growthFactor = growthFactor;
        this.backoffFactor = backoffFactor;
        this.growthInterval = growthInterval;
    }

    public static DynamicLossScaler torchDefaults() {
        return new DynamicLossScaler(65536.0, 2.0, 0.5, 2000);
    }

    public double scale() {
        return scale;
    }

    public int cleanSteps() {
        return cleanSteps;
    }

    /** Restores a checkpoint's scaler state. */
    public void restore(double scale, int cleanSteps) {
        this.scale = scale;
        this.cleanSteps = cleanSteps;
    }

    /**
     * Divides the gradients by the scale (GradScaler.unscale_) and tells whether they are all finite. If not, the
     * caller skips the optimizer step; either way it then calls {@link #update}.
     */
    public boolean unscale(Collection<float[]> grads) {
        float inverse = (float) (1.0 / scale);
        boolean finite = true;
        for (float[] g : grads) {
            for (int i = 0; i < g.length; i++) {
                g[i] *= inverse;
                finite &= Float.isFinite(g[i]);
            }
        }
        return finite;
    }

    /** GradScaler.update: halve on overflow (and restart the count), double after growthInterval clean steps. */
    public void update(boolean foundOverflow) {
        if (foundOverflow) {
            scale *= backoffFactor;
            cleanSteps = 0;
        } else if (++cleanSteps == growthInterval) {
            scale *= growthFactor;
            cleanSteps = 0;
        }
    }
}

package dev.expo.training.engine.optim;

import java.util.Collection;

/**
 * {@code torch.nn.utils.clip_grad_norm_} as HF's Trainer calls it ({@code max_grad_norm}, 1.0 by default; 0 = off):
 * the global L2 norm over every gradient; if it exceeds the maximum, every gradient is scaled by
 * {@code max / (norm + 1e-6)}. Returns the norm before clipping (what the Trainer logs as grad_norm).
 */
public final class GradientClipping {

    private GradientClipping() {
    }

    public static double globalNorm(Collection<float[]> grads) {
        double sumSquares = 0;
        for (float[] g : grads) {
            for (float x : g) {
                sumSquares += (double) x * x;
            }
        }
        return Math.sqrt(sumSquares);
    }

    public static double clip(Collection<float[]> grads, double maxNorm) {
        double norm = globalNorm(grads);
        if (maxNorm > 0 && Double.isFinite(norm)) {
            double coefficient = maxNorm / (norm + 1e-6);
            if (coefficient < 1) {
                float c = (float) coefficient;
                for (float[] g : grads) {
                    for (int i = 0; i < g.length; i++) {
                        g[i] *= c;
                    }
                }
            }
        }
        return norm;
    }
}

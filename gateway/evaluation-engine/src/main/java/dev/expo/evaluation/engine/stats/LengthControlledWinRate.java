package dev.expo.evaluation.engine.stats;

/**
 * AlpacaEval 2's length-controlled win rate in its {@code length_controlled_minimal} form
 * (alpaca_eval/metrics/glm_winrate.py, formula {@code np.tanh(std_delta_len) + not_gamed_baseline.astype(float) - 1}):
 * a logistic GLM, without intercept, of the preference for the variant on two features, {@code tanh} of the length
 * difference (reference minus variant, in characters as Python's {@code str.len} counts them, divided by the
 * differences' standard deviation with ddof 1) and a constant per-comparison term. Preferences are soft labels in
 * [0, 1] (a tie is 0.5), fitted as AlpacaEval fits them: each comparison is a row labelled 1 weighted by p and a row
 * labelled 0 weighted by 1 - p. The length-controlled win rate is the GLM's prediction with no length difference,
 * the logistic of the constant term's weight.
 *
 * <p>AlpacaEval chooses an L1 strength by 5-fold cross-validation over sklearn's default grid; on comparisons that
 * are not separable its choice is the largest and the fit is the maximum-likelihood one. Here the fit is the
 * maximum-likelihood one with sklearn's weak L2 penalty at C = 100 ({@code ||w||² / 2 + C Σ loss}), which keeps it
 * finite and unique when one side wins every comparison or the lengths never differ.
 */
public final class LengthControlledWinRate {

    /** sklearn's {@code LogisticRegression(C=100)}, AlpacaEval's fit without cross-validation. */
    static final double C = 100;

    private LengthControlledWinRate() {
    }

    /** The fitted weights and the win rate they predict at zero length difference. */
    public record Fit(double winRate, double lengthWeight, double comparisonWeight) {
    }

    public static Fit fit(double[] preferences, int[] variantLengths, int[] referenceLengths) {
        int n = preferences.length;
        if (n == 0 || variantLengths.length != n || referenceLengths.length != n) {
            throw new IllegalArgumentException("a length-controlled win rate needs one preference and two lengths per"
                    + " comparison, got " + n + ", " + variantLengths.length + " and " + referenceLengths.length);
        }
        double[] lengthFeature = lengthFeature(variantLengths, referenceLengths);
        double[] w = newton(preferences, lengthFeature);
        return new Fit(logistic(w[1]), w[0], w[1]);
    }

    /** tanh(std_delta_len); all zeros when the differences do not vary (their standard deviation is 0 or undefined). */
    static double[] lengthFeature(int[] variantLengths, int[] referenceLengths) {
        double[] delta = new double[variantLengths.length];
        for (int i = 0; i < delta.length; i++) {
            delta[i] = referenceLengths[i] - (double) variantLengths[i];
        }
        double sd = Samples.standardDeviation(delta);
        double[] feature = new double[delta.length];
        if (sd > 0) {
            for (int i = 0; i < delta.length; i++) {
                feature[i] = Math.tanh(delta[i] / sd);
            }
        }
        return feature;
    }

    /** Newton's method on the penalized log loss (strictly convex), halving a step that does not lower it. */
    private static double[] newton(double[] p, double[] x) {
        double[] w = {0, 0};
        double objective = objective(p, x, w);
        for (int iteration = 0; iteration < 100; iteration++) {
            double g0 = w[0] / C;
            double g1 = w[1] / C;
            double h00 = 1 / C;
            double h01 = 0;
            double h11 = 1 / C;
            for (int i = 0; i < p.length; i++) {
                double s = logistic(w[0] * x[i] + w[1]);
                double r = s - p[i];
                double v = s * (1 - s);
                g0 += r * x[i];
                g1 += r;
                h00 += v * x[i] * x[i];
                h01 += v * x[i];
                h11 += v;
            }
            double det = h00 * h11 - h01 * h01;
            double d0 = (h11 * g0 - h01 * g1) / det;
            double d1 = (h00 * g1 - h01 * g0) / det;
            double step = 1;
            double[] next = {w[0] - d0, w[1] - d1};
            double nextObjective = objective(p, x, next);
            // near the optimum the loss changes below its rounding: only a clear rise calls for a shorter step
            while (nextObjective - objective > 1e-12 * (1 + Math.abs(objective)) && step > 1e-10) {
                step /= 2;
                next = new double[] {w[0] - step * d0, w[1] - step * d1};
                nextObjective = objective(p, x, next);
            }
            boolean converged = Math.abs(d0) + Math.abs(d1) < 1e-14 * (1 + Math.abs(w[0]) + Math.abs(w[1]))
                    || (next[0] == w[0] && next[1] == w[1]);
            w = next;
            objective = nextObjective;
            if (converged) {
                break;
            }
        }
        return w;
    }

    private static double objective(double[] p, double[] x, double[] w) {
        double loss = (w[0] * w[0] + w[1] * w[1]) / (2 * C);
        for (int i = 0; i < p.length; i++) {
            double z = w[0] * x[i] + w[1];
            // -[p log s(z) + (1 - p) log s(-z)], with log s(z) = -log(1 + e^-z) computed without overflow
            loss += p[i] * softplus(-z) + (1 - p[i]) * softplus(z);
        }
        return loss;
    }

    private static double softplus(double z) {
        return z > 0 ? z + Math.log1p(Math.exp(-z)) : Math.log1p(Math.exp(z));
    }

    static double logistic(double z) {
        return z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z));
    }
}

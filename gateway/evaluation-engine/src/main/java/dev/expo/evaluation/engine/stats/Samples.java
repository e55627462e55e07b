package dev.expo.evaluation.engine.stats;

import java.util.Arrays;

/** The sample moments and quantiles the statistics share, with numpy's and pandas' conventions. */
final class Samples {

    private Samples() {
    }

    static double mean(double[] values) {
        double sum = 0;
        for (double value : values) {
            sum += value;
        }
        return sum / values.length;
    }

    /** With Bessel's correction (ddof = 1, as pandas' {@code std} and {@code sem}); NaN below two values. */
    static double standardDeviation(double[] values) {
        if (values.length < 2) {
            return Double.NaN;
        }
        double mean = mean(values);
        double squares = 0;
        for (double value : values) {
            squares += (value - mean) * (value - mean);
        }
        return Math.sqrt(squares / (values.length - 1));
    }

    /** numpy's default ("linear") quantile: interpolated between the two order statistics around (n - 1) q. */
    static double quantile(double[] values, double q) {
        double[] sorted = values.clone();
        Arrays.sort(sorted);
        double position = (sorted.length - 1) * q;
        int below = (int) Math.floor(position);
        int above = Math.min(below + 1, sorted.length - 1);
        return sorted[below] + (position - below) * (sorted[above] - sorted[below]);
    }
}

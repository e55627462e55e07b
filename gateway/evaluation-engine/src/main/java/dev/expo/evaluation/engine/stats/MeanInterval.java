package dev.expo.evaluation.engine.stats;

import org.apache.commons.math3.distribution.TDistribution;

/**
 * A sample mean with its standard error and a Student's t confidence interval (scipy's
 * {@code stats.t.interval(c, n - 1, mean, sem)}). With one value the interval is unknown (NaN), not zero wide.
 */
public record MeanInterval(int count, double mean, double standardError, double lower, double upper) {

    public static final double CONFIDENCE = 0.95;

    public static MeanInterval of(double[] values) {
        return of(values, CONFIDENCE);
    }

    public static MeanInterval of(double[] values, double confidence) {
        if (values.length == 0) {
            throw new IllegalArgumentException("a mean needs at least one value");
        }
        if (!(confidence > 0 && confidence < 1)) {
            throw new IllegalArgumentException("confidence must lie in (0, 1), got " + confidence);
        }
        double mean = Samples.mean(values);
        if (values.length == 1) {
            return new MeanInterval(1, mean, Double.NaN, Double.NaN, Double.NaN);
        }
        double standardError = Samples.standardDeviation(values) / Math.sqrt(values.length);
        double t = new TDistribution(null, values.length - 1).inverseCumulativeProbability((1 + confidence) / 2);
        return new MeanInterval(values.length, mean, standardError, mean - t * standardError, mean + t * standardError);
    }
}

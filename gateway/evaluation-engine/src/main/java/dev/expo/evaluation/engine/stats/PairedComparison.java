package dev.expo.evaluation.engine.stats;

import java.util.SplittableRandom;

/**
 * One variant against the reference variant on the same prompts, judged by reward: a win when its reward is higher,
 * a tie (half a win) when equal. The win rate's standard error is AlpacaEval's (the preferences' {@code sem}); its
 * interval and the length-controlled win rate's are paired percentile bootstraps: each resample draws prompts with
 * replacement and keeps both sides of each drawn prompt together, then both statistics are recomputed on it.
 */
public record PairedComparison(int count, int wins, int losses, int ties, double winRate, double standardError,
        Interval winRateInterval, LengthControlledWinRate.Fit lengthControlled, Interval lengthControlledInterval) {

    /** A confidence interval; NaN ends when it cannot be estimated (a single comparison). */
    public record Interval(double lower, double upper) {
    }

    /** How intervals are resampled: seeded, so a summary recomputed from the same outputs is the same. */
    public record Bootstrap(int resamples, long seed, double confidence) {
        public static final Bootstrap DEFAULT = new Bootstrap(2000, 0, MeanInterval.CONFIDENCE);

        public Bootstrap {
            if (resamples < 1) {
                throw new IllegalArgumentException("a bootstrap needs at least one resample, got " + resamples);
            }
            if (!(confidence > 0 && confidence < 1)) {
                throw new IllegalArgumentException("confidence must lie in (0, 1), got " + confidence);
            }
        }
    }

    /** The comparison of {@code variant[i]} with {@code reference[i]}, prompt i the same on both sides. */
    public static PairedComparison of(double[] variantRewards, double[] referenceRewards, int[] variantLengths,
            int[] referenceLengths, Bootstrap bootstrap) {
        int n = variantRewards.length;
        if (n == 0) {
            throw new IllegalArgumentException("a comparison needs at least one prompt answered by both variants");
        }
        if (referenceRewards.length != n || variantLengths.length != n || referenceLengths.length != n) {
            throw new IllegalArgumentException("both variants need a reward and a length for each of the " + n
                    + " prompts");
        }
        double[] preferences = new double[n];
        int wins = 0;
        int losses = 0;
        for (int i = 0; i < n; i++) {
            if (Double.isNaN(variantRewards[i]) || Double.isNaN(referenceRewards[i])) {
                throw new IllegalArgumentException("reward of prompt " + i + " is not a number");
            }
            int order = Double.compare(variantRewards[i], referenceRewards[i]);
            preferences[i] = order > 0 ? 1 : order < 0 ? 0 : 0.5;
            wins += order > 0 ? 1 : 0;
            losses += order < 0 ? 1 : 0;
        }
        double winRate = Samples.mean(preferences);
        double standardError = Samples.standardDeviation(preferences) / Math.sqrt(n);
        LengthControlledWinRate.Fit lengthControlled =
                LengthControlledWinRate.fit(preferences, variantLengths, referenceLengths);
        if (n == 1) {
            Interval unknown = new Interval(Double.NaN, Double.NaN);
            return new PairedComparison(1, wins, losses, n - wins - losses, winRate, standardError, unknown,
                    lengthControlled, unknown);
        }

        double[] winRates = new double[bootstrap.resamples()];
        double[] lengthControlledRates = new double[bootstrap.resamples()];
        SplittableRandom random = new SplittableRandom(bootstrap.seed());
        double[] p = new double[n];
        int[] vl = new int[n];
        int[] rl = new int[n];
        for (int b = 0; b < bootstrap.resamples(); b++) {
            for (int i = 0; i < n; i++) {
                int drawn = random.nextInt(n);
                p[i] = preferences[drawn];
                vl[i] = variantLengths[drawn];
                rl[i] = referenceLengths[drawn];
            }
            winRates[b] = Samples.mean(p);
            lengthControlledRates[b] = LengthControlledWinRate.fit(p, vl, rl).winRate();
        }
        double tail = (1 - bootstrap.confidence()) / 2;
        return new PairedComparison(n, wins, losses, n - wins - losses, winRate, standardError,
                new Interval(Samples.quantile(winRates, tail), Samples.quantile(winRates, 1 - tail)),
                lengthControlled,
                new Interval(Samples.quantile(lengthControlledRates, tail),
                        Samples.quantile(lengthControlledRates, 1 - tail)));
    }
}

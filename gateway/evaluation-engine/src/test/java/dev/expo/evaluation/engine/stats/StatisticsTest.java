package dev.expo.evaluation.engine.stats;

import org.junit.jupiter.api.Test;

import java.util.Arrays;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

/**
 * Expected values computed independently with numpy and scipy (scipy.stats.t.interval and sem, numpy.quantile, the
 * GLM's penalized log loss minimized by scipy.optimize's BFGS, polished to the gradient's root) by
 * {@code testdata/evaluation/expected_statistics.py} (run it to see them).
 */
class StatisticsTest {

    static final double[] REFERENCE = parse("0.001,0.299,-0.274,-0.891,-0.455,-0.992,0.060,1.340,-0.492,-0.620,0.490,"
            + "0.357,0.105,-0.930,-0.029,0.695,-1.344,-0.458,-1.901,-1.290,-1.842,-0.235,-1.267,0.271,0.157,-0.187,"
            + "-2.517,-0.539,-0.049,0.113,-1.530,-0.478,-0.979,-0.809,1.061,-0.808,-0.033");
    static final double[] VARIANT = parse("1.185,0.015,-0.086,-0.481,-0.091,-0.992,0.436,2.999,-1.739,0.539,0.909,"
            + "0.357,2.405,0.132,-0.928,1.070,-0.467,-0.347,-0.918,-1.057,-0.875,1.504,-1.643,0.774,-0.006,0.240,"
            + "-3.404,-0.818,0.055,1.312,-0.085,-1.502,-1.474,0.138,-0.631,-0.971,0.170");
    static final int[] REFERENCE_LENGTHS = ints("345,345,218,380,262,366,386,249,148,100,246,117,312,374,135,243,67,"
            + "113,182,359,389,274,254,249,71,181,394,193,124,133,299,63,389,356,248,213,316");
    static final int[] VARIANT_LENGTHS = ints("464,435,246,458,462,288,296,437,196,321,158,379,261,440,421,186,230,"
            + "304,253,290,498,347,503,421,108,104,530,204,297,378,341,324,496,468,454,428,579");

    @Test
    void meanIntervalIsStudentsT() {
        MeanInterval interval = MeanInterval.of(VARIANT);
        assertThat(interval.mean()).isCloseTo(-0.11554054054054055, within(1e-15));
        assertThat(interval.standardError()).isCloseTo(0.19737285638184449, within(1e-15));
        assertThat(interval.lower()).isCloseTo(-0.5158312465249353, within(1e-12));
        assertThat(interval.upper()).isCloseTo(0.28475016544385423, within(1e-12));

        MeanInterval single = MeanInterval.of(new double[] {2.5});
        assertThat(single.mean()).isEqualTo(2.5);
        assertThat(single.lower()).isNaN();
        assertThatThrownBy(() -> MeanInterval.of(new double[0])).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void winRateCountsTiesAsHalfWithAlpacaEvalsStandardError() {
        PairedComparison comparison = PairedComparison.of(VARIANT, REFERENCE, VARIANT_LENGTHS, REFERENCE_LENGTHS,
                PairedComparison.Bootstrap.DEFAULT);
        assertThat(comparison.count()).isEqualTo(37);
        assertThat(comparison.ties()).isEqualTo(2);
        assertThat(comparison.wins() + comparison.losses()).isEqualTo(35);
        assertThat(comparison.winRate()).isCloseTo(0.6756756756756757, within(1e-15));
        assertThat(comparison.standardError()).isCloseTo(0.07557640421424558, within(1e-15));
    }

    @Test
    void lengthControlledWinRateIsTheGlmAtZeroLengthDifference() {
        double[] preferences = new double[VARIANT.length];
        for (int i = 0; i < preferences.length; i++) {
            preferences[i] = VARIANT[i] > REFERENCE[i] ? 1 : VARIANT[i] < REFERENCE[i] ? 0 : 0.5;
        }
        LengthControlledWinRate.Fit fit = LengthControlledWinRate.fit(preferences, VARIANT_LENGTHS, REFERENCE_LENGTHS);
        assertThat(fit.winRate()).isCloseTo(0.7787173369119934, within(1e-12));
        assertThat(fit.lengthWeight()).isCloseTo(0.945428793443302, within(1e-10));
        assertThat(fit.comparisonWeight()).isCloseTo(1.258207223483742, within(1e-10));

        // one side winning every comparison is separable: the penalty keeps the fit finite
        double[] allWins = new double[8];
        Arrays.fill(allWins, 1);
        LengthControlledWinRate.Fit separable = LengthControlledWinRate.fit(allWins,
                new int[] {10, 20, 30, 40, 50, 60, 70, 80}, new int[] {5, 5, 5, 5, 5, 5, 5, 5});
        assertThat(separable.winRate()).isCloseTo(0.9780948046656914, within(1e-12));
        assertThat(separable.lengthWeight()).isCloseTo(-2.222854688088433, within(1e-10));
    }

    @Test
    void lengthsThatNeverDifferLeaveTheComparisonTermAlone() {
        double[] preferences = {1, 1, 0, 0.5};
        LengthControlledWinRate.Fit fit = LengthControlledWinRate.fit(preferences, new int[] {7, 8, 9, 10},
                new int[] {7, 8, 9, 10});
        assertThat(fit.lengthWeight()).isZero();
        // the intercept-only maximum of 2.5 log s(w) + 1.5 log s(-w) - w^2/200 sits just below logit(0.625)
        assertThat(fit.winRate()).isLessThan(0.625).isGreaterThan(0.62);
    }

    @Test
    void bootstrapIntervalsAreSeededPairedAndCoverTheEstimate() {
        PairedComparison first = PairedComparison.of(VARIANT, REFERENCE, VARIANT_LENGTHS, REFERENCE_LENGTHS,
                PairedComparison.Bootstrap.DEFAULT);
        PairedComparison again = PairedComparison.of(VARIANT, REFERENCE, VARIANT_LENGTHS, REFERENCE_LENGTHS,
                PairedComparison.Bootstrap.DEFAULT);
        assertThat(again).isEqualTo(first);

        // 2000 resamples of a mean of 37: within a few points of the normal interval +-1.96 se
        assertThat(first.winRateInterval().lower()).isCloseTo(0.6757 - 1.96 * 0.07558, within(0.03));
        assertThat(first.winRateInterval().upper()).isCloseTo(0.6757 + 1.96 * 0.07558, within(0.03));
        assertThat(first.lengthControlledInterval().lower()).isLessThan(first.lengthControlled().winRate());
        assertThat(first.lengthControlledInterval().upper()).isGreaterThan(first.lengthControlled().winRate());

        PairedComparison otherSeed = PairedComparison.of(VARIANT, REFERENCE, VARIANT_LENGTHS, REFERENCE_LENGTHS,
                new PairedComparison.Bootstrap(2000, 1, 0.95));
        assertThat(otherSeed.winRateInterval()).isNotEqualTo(first.winRateInterval());
        assertThat(otherSeed.winRate()).isEqualTo(first.winRate());
    }

    @Test
    void aVariantAgainstItselfIsHalfWithAZeroWidthInterval() {
        PairedComparison self = PairedComparison.of(REFERENCE, REFERENCE, REFERENCE_LENGTHS, REFERENCE_LENGTHS,
                new PairedComparison.Bootstrap(200, 3, 0.95));
        assertThat(self.ties()).isEqualTo(37);
        assertThat(self.winRate()).isEqualTo(0.5);
        assertThat(self.lengthControlled().winRate()).isEqualTo(0.5);
        assertThat(self.winRateInterval()).isEqualTo(new PairedComparison.Interval(0.5, 0.5));
        assertThat(self.lengthControlledInterval()).isEqualTo(new PairedComparison.Interval(0.5, 0.5));
    }

    @Test
    void badComparisonsAreRefused() {
        assertThatThrownBy(() -> PairedComparison.of(new double[0], new double[0], new int[0], new int[0],
                PairedComparison.Bootstrap.DEFAULT)).hasMessageContaining("at least one prompt");
        assertThatThrownBy(() -> PairedComparison.of(new double[] {1, 2}, new double[] {1}, new int[2], new int[2],
                PairedComparison.Bootstrap.DEFAULT)).hasMessageContaining("each of the 2 prompts");
        assertThatThrownBy(() -> PairedComparison.of(new double[] {Double.NaN}, new double[] {1}, new int[1],
                new int[1], PairedComparison.Bootstrap.DEFAULT)).hasMessageContaining("not a number");
        assertThatThrownBy(() -> new PairedComparison.Bootstrap(0, 0, 0.95)).hasMessageContaining("resample");
    }

    @Test
    void quantilesInterpolateAsNumpy() {
        double[] x = {3, 1, 4, 1, 5, 9, 2, 6};
        assertThat(Samples.quantile(x, 0.025)).isCloseTo(1.0, within(1e-15));
        assertThat(Samples.quantile(x, 0.975)).isCloseTo(8.475000000000001, within(1e-12));
        assertThat(Samples.quantile(x, 0.5)).isCloseTo(3.5, within(1e-15));
    }

    @Test
    void seqRepIsTheShareOfRepeatedFourGrams() {
        int[] loop = new int[35];
        int[] head = {1, 2, 3, 4, 5};
        System.arraycopy(head, 0, loop, 0, 5);
        for (int i = 5; i < 35; i++) {
            loop[i] = 7 + (i - 5) % 3;
        }
        assertThat(Repetition.seqRep(loop)).isCloseTo(0.75, within(1e-15));
        assertThat(Repetition.isRepeating(Repetition.seqRep(loop))).isTrue();
        int[] plain = new int[20];
        Arrays.setAll(plain, i -> i);
        assertThat(Repetition.seqRep(plain)).isZero();
        assertThat(Repetition.seqRep(new int[] {1, 1, 1})).isZero();
    }

    private static double[] parse(String csv) {
        return Arrays.stream(csv.split(",")).mapToDouble(Double::parseDouble).toArray();
    }

    private static int[] ints(String csv) {
        return Arrays.stream(csv.split(",")).mapToInt(Integer::parseInt).toArray();
    }
}

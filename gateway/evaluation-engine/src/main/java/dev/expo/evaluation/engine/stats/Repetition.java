package dev.expo.evaluation.engine.stats;

import java.util.HashSet;
import java.util.Set;

/**
 * How much an output repeats itself: seq-rep-n of Welleck et al. 2019 ("Neural Text Generation with Unlikelihood
 * Training", section 5), the share of its token n-grams that occurred earlier in it, {@code 1 - unique / total}.
 * 0 for an output without repeats or shorter than n tokens; near 1 for one stuck in a loop, the way ExPO at too
 * large an alpha degenerates.
 */
public final class Repetition {

    /** The paper's n. */
    public static final int NGRAM = 4;

    /** An output counts as repeating itself when more than half its 4-grams are repeats. */
    public static final double REPEATING = 0.5;

    private Repetition() {
    }

    public static double seqRep(int[] tokens) {
        return seqRep(tokens, NGRAM);
    }

    public static double seqRep(int[] tokens, int n) {
        if (n < 1) {
            throw new IllegalArgumentException("n-grams need n >= 1, got " + n);
        }
        int total = tokens.length - n + 1;
        if (total <= 0) {
            return 0;
        }
        Set<NGram> seen = new HashSet<>();
        for (int start = 0; start < total; start++) {
            seen.add(new NGram(tokens, start, n));
        }
        return 1 - seen.size() / (double) total;
    }

    public static boolean isRepeating(double seqRep) {
        return seqRep > REPEATING;
    }

    /** A view of tokens[start, start + n) with value equality. */
    private record NGram(int[] tokens, int start, int n) {
        @Override
        public boolean equals(Object other) {
            return other instanceof NGram that && java.util.Arrays.equals(tokens, start, start + n,
                    that.tokens, that.start, that.start + that.n);
        }

        @Override
        public int hashCode() {
            int hash = 1;
            for (int i = start; i < start + n; i++) {
                hash = 31 * hash + tokens[i];
            }
            return hash;
        }
    }
}

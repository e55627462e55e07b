package dev.expo.evaluation.engine;

import dev.expo.evaluation.engine.stats.MeanInterval;
import dev.expo.evaluation.engine.stats.PairedComparison;

/**
 * What a run says about one variant: its reward, how it fares against the reference variant on the same prompts, and
 * its lengths and degeneration signals.
 *
 * @param againstReference the paired comparison with the reference (for the reference itself: all ties, 0.5)
 * @param lengthLimitShare the share of outputs that stopped at the token limit
 * @param repeatingShare   the share of outputs more than half of whose 4-grams repeat
 */
public record VariantSummary(String variant, int outputs, MeanInterval reward, PairedComparison againstReference,
        double meanGeneratedTokens, double meanCharacters, double lengthLimitShare, double meanSeqRep,
        double repeatingShare) {
}

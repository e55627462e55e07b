package dev.expo.evaluation.engine;

/**
 * One prompt answered by one variant and scored by the reward model: a line of a run's {@code results.jsonl}.
 *
 * @param generatedTokens tokens generated, an end-of-sequence token included
 * @param finishReason    "stop" or "length" (the output hit the token limit), as the inference service reports it
 * @param seqRep          the share of its 4-grams that repeat ({@link dev.expo.evaluation.engine.stats.Repetition})
 */
public record ScoredOutput(String promptId, String variant, String instruction, String output, double reward,
        int generatedTokens, String finishReason, double seqRep) {

    public static final String FINISH_LENGTH = "length";

    /** Characters as Python's {@code len(str)} counts them (code points), AlpacaEval's length. */
    public int characters() {
        return output.codePointCount(0, output.length());
    }

    public boolean hitLengthLimit() {
        return FINISH_LENGTH.equals(finishReason);
    }
}

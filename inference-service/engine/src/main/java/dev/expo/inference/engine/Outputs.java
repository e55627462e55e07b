package dev.expo.inference.engine;

import java.time.Duration;
import java.util.List;

/** What the engine answers. */
public final class Outputs {

    private Outputs() {
    }

    /** A token id and its log-probability; {@code token} is the token decoded alone, or null where not asked. */
    public record TokenLogprob(int tokenId, float logprob, String token) {
    }

    /** One scored position: the next input id (null at the end), its logprob, and the top alternatives. */
    public record PositionScore(Integer tokenId, Float logprob, List<TokenLogprob> top) {
    }

    public record ScoreResult(long[] tokenIds, List<PositionScore> positions) {
    }

    public record Embedding(long[] shape, float[] values) {
    }

    /** Where a reward model reads its score. */
    public enum RewardPosition {
        /**
         * transformers 4.44.2's sequence classifiers: the token before the first pad id, else the last token. With
         * pad = {@code </s>} (zephyr's), a conversation is scored at the end of its first turn.
         */
        HF,
        /** The last token of the input, whatever it holds. */
        LAST_TOKEN
    }

    /**
     * A reward: the score head's output at {@code position} of the {@code tokens} input tokens scored; {@code
     * truncated} when the input was longer than the model's context and only its first {@code tokens} were scored.
     */
    public record Reward(float reward, int position, int tokens, boolean truncated) {
    }

    /** A generated token's logprob under the model's distribution, with the alternatives. */
    public record GeneratedLogprobs(int tokenId, float logprob, String token, List<TokenLogprob> top) {
    }

    public enum FinishReason { STOP, LENGTH, CANCELLED }

    /** @param cachedPromptTokens of the prompt's, those taken over from a previous request's cache */
    public record Usage(int promptTokens, int cachedPromptTokens, int generatedTokens, Duration timeToFirstToken,
                        Duration totalTime) {
    }

    /** The whole of a finished generation (what the stream added up to). */
    public record Generation(String text, int[] tokenIds, FinishReason finishReason, Usage usage) {
    }
}

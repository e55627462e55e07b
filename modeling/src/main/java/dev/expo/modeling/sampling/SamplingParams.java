package dev.expo.modeling.sampling;

import dev.expo.common.ExpoException;

import java.util.List;
import java.util.Objects;
import java.util.OptionalLong;
import java.util.Set;

/**
 * How one request picks its tokens. Every value is checked when the request is admitted, naming the field. Built by
 * name, as vLLM's {@code SamplingParams(temperature=..., top_p=...)} reads, with every value not given off:
 * <pre>{@code
 * SamplingParams.builder().temperature(0.7f).topP(0.9f).maxNewTokens(128).seed(7).build()
 * }</pre>
 *
 * @param temperature        0 = greedy
 * @param topP               1 = off
 * @param topK               0 = off
 * @param minP               0 = off; transformers' MinPLogitsWarper (after temperature, top-k and top-p)
 * @param repetitionPenalty  1 = off; transformers' semantics over prompt and output
 * @param frequencyPenalty   0 = off; OpenAI semantics over the output
 * @param presencePenalty    0 = off
 * @param noRepeatNgramSize  0 = off; transformers' semantics over prompt and output
 * @param seed               empty = a random seed
 * @param topLogprobs        alternatives returned per position (0 = none)
 */
public record SamplingParams(float temperature, float topP, int topK, float minP, float repetitionPenalty,
                             float frequencyPenalty, float presencePenalty, int noRepeatNgramSize,
                             List<String> stop, Set<Integer> stopTokenIds, int maxNewTokens, OptionalLong seed,
                             boolean ignoreEos, boolean logprobs, int topLogprobs) {

    public static final int MAX_TOP_LOGPROBS = 20;

    public SamplingParams {
        stop = List.copyOf(stop);
        stopTokenIds = Set.copyOf(stopTokenIds);
        Objects.requireNonNull(seed, "seed");
        check(Float.isFinite(temperature) && temperature >= 0 && temperature <= 100, "temperature", temperature,
                "must be between 0 (greedy) and 100");
        check(topP > 0 && topP <= 1, "top_p", topP, "must be in (0, 1]");
        check(topK >= 0, "top_k", topK, "must be 0 (off) or positive");
        check(minP >= 0 && minP <= 1, "min_p", minP, "must be in [0, 1] (0 = off)");
        check(Float.isFinite(repetitionPenalty) && repetitionPenalty > 0, "repetition_penalty", repetitionPenalty,
                "must be positive (1 = off)");
        check(Float.isFinite(frequencyPenalty) && Math.abs(frequencyPenalty) <= 2, "frequency_penalty",
                frequencyPenalty, "must be between -2 and 2");
        check(Float.isFinite(presencePenalty) && Math.abs(presencePenalty) <= 2, "presence_penalty", presencePenalty,
                "must be between -2 and 2");
        check(noRepeatNgramSize >= 0, "no_repeat_ngram_size", noRepeatNgramSize, "must be 0 (off) or positive");
        check(maxNewTokens >= 1, "max_new_tokens", maxNewTokens, "must be at least 1");
        check(topLogprobs >= 0 && topLogprobs <= MAX_TOP_LOGPROBS, "top_logprobs", topLogprobs,
                "must be between 0 and " + MAX_TOP_LOGPROBS);
        for (String s : stop) {
            check(!s.isEmpty(), "stop", s, "a stop sequence must not be empty");
        }
        check(stop.size() <= 16, "stop", stop.size() + " sequences", "at most 16 stop sequences");
    }

    private static void check(boolean ok, String field, Object value, String expectation) {
        if (!ok) {
            throw ExpoException.invalidArgument(field, value, expectation);
        }
    }

    /** The same, with another max_new_tokens. */
    public SamplingParams withMaxNewTokens(int maxNewTokens) {
        return toBuilder().maxNewTokens(maxNewTokens).build();
    }

    public boolean greedy() {
        return temperature == 0f;
    }

    /** Greedy, at most {@code maxNewTokens}, nothing else. */
    public static SamplingParams greedy(int maxNewTokens) {
        return builder().maxNewTokens(maxNewTokens).build();
    }

    /** Every value off: greedy, no penalties, no stops, no logprobs, a random seed, 16 new tokens (vLLM's default). */
    public static Builder builder() {
        return new Builder();
    }

    /** A builder holding these values. */
    public Builder toBuilder() {
        Builder b = new Builder();
        b.temperature = temperature;
        b.topP = topP;
        b.topK = topK;
        b.minP = minP;
        b.repetitionPenalty = repetitionPenalty;
        b.frequencyPenalty = frequencyPenalty;
        b.presencePenalty = presencePenalty;
        b.noRepeatNgramSize = noRepeatNgramSize;
        b.stop = stop;
        b.stopTokenIds = stopTokenIds;
        b.maxNewTokens = maxNewTokens;
        b.seed = seed;
        b.ignoreEos = ignoreEos;
        b.logprobs = logprobs;
        b.topLogprobs = topLogprobs;
        return b;
    }

    /** Named values; {@link #build} checks them all. */
    public static final class Builder {
        private float temperature = 0f;
        private float topP = 1f;
        private int topK = 0;
        private float minP = 0f;
        private float repetitionPenalty = 1f;
        private float frequencyPenalty = 0f;
        private float presencePenalty = 0f;
        private int noRepeatNgramSize = 0;
        private List<String> stop = List.of();
        private Set<Integer> stopTokenIds = Set.of();
        private int maxNewTokens = 16;
        private OptionalLong seed = OptionalLong.empty();
        private boolean ignoreEos;
        private boolean logprobs;
        private int topLogprobs;

        private Builder() {
        }

        public Builder temperature(float temperature) {
            this.temperature = temperature;
            return this;
        }

        public Builder topP(float topP) {
            this.topP = topP;
            return this;
        }

        public Builder topK(int topK) {
            this.topK = topK;
            return this;
        }

        public Builder minP(float minP) {
            this.minP = minP;
            return this;
        }

        public Builder repetitionPenalty(float repetitionPenalty) {
            this.repetitionPenalty = repetitionPenalty;
            return this;
        }

        public Builder frequencyPenalty(float frequencyPenalty) {
            this.frequencyPenalty = frequencyPenalty;
            return this;
        }

        public Builder presencePenalty(float presencePenalty) {
            this.presencePenalty = presencePenalty;
            return this;
        }

        public Builder noRepeatNgramSize(int noRepeatNgramSize) {
            this.noRepeatNgramSize = noRepeatNgramSize;
            return this;
        }

        public Builder stop(List<String> stop) {
            this.stop = stop;
            return this;
        }

        public Builder stopTokenIds(Set<Integer> stopTokenIds) {
            this.stopTokenIds = stopTokenIds;
            return this;
        }

        public Builder maxNewTokens(int maxNewTokens) {
            this.maxNewTokens = maxNewTokens;
            return this;
        }

        /** A fixed seed: the same request samples the same tokens. */
        public Builder seed(long seed) {
            this.seed = OptionalLong.of(seed);
            return this;
        }

        /** A fixed seed, or (empty) a random one. */
        public Builder seed(OptionalLong seed) {
            this.seed = seed;
            return this;
        }

        public Builder ignoreEos(boolean ignoreEos) {
            this.ignoreEos = ignoreEos;
            return this;
        }

        public Builder logprobs(boolean logprobs) {
            this.logprobs = logprobs;
            return this;
        }

        public Builder topLogprobs(int topLogprobs) {
            this.topLogprobs = topLogprobs;
            return this;
        }

        public SamplingParams build() {
            return new SamplingParams(temperature, topP, topK, minP, repetitionPenalty, frequencyPenalty,
                    presencePenalty, noRepeatNgramSize, stop, stopTokenIds, maxNewTokens, seed, ignoreEos, logprobs,
                    topLogprobs);
        }
    }
}

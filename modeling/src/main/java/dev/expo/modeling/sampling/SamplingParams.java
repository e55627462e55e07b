package dev.expo.modeling.sampling;

import dev.expo.common.ExpoException;

import java.util.List;
import java.util.Set;

/**
 * How one request picks its tokens. Every value is checked when the request is admitted, naming the field.
 *
 * @param temperature        0 = greedy
 * @param topP               1 = off
 * @param topK               0 = off
 * @param minP               0 = off; transformers' MinPLogitsWarper (after temperature, top-k and top-p)
 * @param repetitionPenalty  1 = off; transformers' semantics over prompt and output
 * @param frequencyPenalty   0 = off; OpenAI semantics over the output
 * @param presencePenalty    0 = off
 * @param noRepeatNgramSize  0 = off; transformers' semantics over prompt and output
 * @param seed               null = a random seed
 * @param topLogprobs        alternatives returned per position (0 = none)
 */
public record SamplingParams(float temperature, float topP, int topK, float minP, float repetitionPenalty,
                             float frequencyPenalty, float presencePenalty, int noRepeatNgramSize,
                             List<String> stop, Set<Integer> stopTokenIds, int maxNewTokens, Long seed,
                             boolean ignoreEos, boolean logprobs, int topLogprobs) {

    public static final int MAX_TOP_LOGPROBS = 20;

    public SamplingParams {
        stop = List.copyOf(stop);
        stopTokenIds = Set.copyOf(stopTokenIds);
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
        return new SamplingParams(temperature, topP, topK, minP, repetitionPenalty, frequencyPenalty,
                presencePenalty, noRepeatNgramSize, stop, stopTokenIds, maxNewTokens, seed, ignoreEos, logprobs,
                topLogprobs);
    }

    public boolean greedy() {
        return temperature == 0f;
    }

    /** Greedy, at most {@code maxNewTokens}, nothing else. */
    public static SamplingParams greedy(int maxNewTokens) {
        return new SamplingParams(0f, 1f, 0, 0f, 1f, 0f, 0f, 0, List.of(), Set.of(), maxNewTokens, null, false,
                false, 0);
    }
}

package dev.expo.modeling.sampling;

import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The logits processors, applied in transformers' order: repetition penalty, then frequency/presence penalties,
 * then no-repeat n-grams, then (when sampling) temperature, top-k, top-p and min-p. Each edits the row in place; a
 * banned token gets -infinity.
 */
public final class LogitsProcessors {

    private LogitsProcessors() {
    }

    /**
     * @param context  prompt + generated ids (repetition penalty and n-grams look at both, as transformers)
     * @param promptLength how many of {@code context} are the prompt (frequency/presence penalties count the output)
     */
    public static void apply(float[] logits, SamplingParams params, int[] context, int length, int promptLength) {
        if (params.repetitionPenalty() != 1f) {
            repetitionPenalty(logits, params.repetitionPenalty(), context, length);
        }
        if (params.frequencyPenalty() != 0f || params.presencePenalty() != 0f) {
            frequencyPresence(logits, params.frequencyPenalty(), params.presencePenalty(), context, promptLength,
                    length);
        }
        if (params.noRepeatNgramSize() > 0) {
            noRepeatNgram(logits, params.noRepeatNgramSize(), context, length);
        }
        if (!params.greedy()) {
            if (params.temperature() != 1f) {
                for (int i = 0; i < logits.length; i++) {
                    logits[i] /= params.temperature();
                }
            }
            if (params.topK() > 0 && params.topK() < logits.length) {
                topK(logits, params.topK());
            }
            if (params.topP() < 1f) {
                topP(logits, params.topP());
            }
            if (params.minP() > 0f) {
                minP(logits, params.minP());
            }
        }
    }

    /** transformers' RepetitionPenaltyLogitsProcessor: a seen token's logit is divided (or, if negative, multiplied). */
    static void repetitionPenalty(float[] logits, float penalty, int[] context, int length) {
        Set<Integer> seen = new HashSet<>();
        for (int i = 0; i < length; i++) {
            int token = context[i];
            if (token >= 0 && token < logits.length && seen.add(token)) {
                logits[token] = logits[token] < 0 ? logits[token] * penalty : logits[token] / penalty;
            }
        }
    }

    /** OpenAI's penalties over the generated tokens: minus frequency * count, minus presence if count > 0. */
    static void frequencyPresence(float[] logits, float frequency, float presence, int[] context, int from, int to) {
        Map<Integer, Integer> counts = new HashMap<>();
        for (int i = from; i < to; i++) {
            counts.merge(context[i], 1, Integer::sum);
        }
        counts.forEach((token, count) -> {
            if (token >= 0 && token < logits.length) {
                logits[token] -= frequency * count + presence;
            }
        });
    }

    /** transformers' NoRepeatNGramLogitsProcessor: ban every token that would complete an n-gram seen before. */
    static void noRepeatNgram(float[] logits, int n, int[] context, int length) {
        if (length + 1 < n) {
            return;
        }
        int prefixStart = length - n + 1;
        for (int start = 0; start + n <= length; start++) {
            boolean same = true;
            for (int k = 0; k < n - 1 && same; k++) {
                same = context[start + k] == context[prefixStart + k];
            }
            if (same) {
                int banned = context[start + n - 1];
                if (banned >= 0 && banned < logits.length) {
                    logits[banned] = Float.NEGATIVE_INFINITY;
                }
            }
        }
    }

    /** transformers' TopKLogitsWarper: keep the k largest (ties with the k-th kept), the rest -inf. */
    static void topK(float[] logits, int k) {
        float[] sorted = logits.clone();
        Arrays.sort(sorted);
        float threshold = sorted[sorted.length - k];
        for (int i = 0; i < logits.length; i++) {
            if (logits[i] < threshold) {
                logits[i] = Float.NEGATIVE_INFINITY;
            }
        }
    }

    /**
     * transformers' TopPLogitsWarper: sort ascending, drop the tokens whose cumulative probability stays within
     * 1 - top_p, always keeping the most likely one.
     */
    static void topP(float[] logits, float topP) {
        Integer[] order = new Integer[logits.length];
        for (int i = 0; i < order.length; i++) {
            order[i] = i;
        }
        Arrays.sort(order, (a, b) -> Float.compare(logits[a], logits[b]));
        double[] probabilities = softmax(logits);
        double cumulative = 0;
        for (int rank = 0; rank < order.length - 1; rank++) {
            cumulative += probabilities[order[rank]];
            if (cumulative <= 1 - topP) {
                logits[order[rank]] = Float.NEGATIVE_INFINITY;
            } else {
                break;
            }
        }
    }

    /**
     * transformers' MinPLogitsWarper: drop every token whose probability is below min_p times the most likely one's
     * (which always stays).
     */
    static void minP(float[] logits, float minP) {
        double[] probabilities = softmax(logits);
        double highest = 0;
        for (double p : probabilities) {
            highest = Math.max(highest, p);
        }
        double threshold = minP * highest;
        for (int i = 0; i < logits.length; i++) {
            if (probabilities[i] < threshold) {
                logits[i] = Float.NEGATIVE_INFINITY;
            }
        }
    }

    /** Softmax in double precision (stable: the maximum is subtracted first). */
    public static double[] softmax(float[] logits) {
        double max = Double.NEGATIVE_INFINITY;
        for (float logit : logits) {
            max = Math.max(max, logit);
        }
        double sum = 0;
        double[] out = new double[logits.length];
        for (int i = 0; i < logits.length; i++) {
            out[i] = logits[i] == Float.NEGATIVE_INFINITY ? 0 : Math.exp(logits[i] - max);
            sum += out[i];
        }
        for (int i = 0; i < out.length; i++) {
            out[i] /= sum;
        }
        return out;
    }

    /** log_softmax of a row, in double precision, returned as float32. */
    public static float[] logSoftmax(float[] logits) {
        double max = Double.NEGATIVE_INFINITY;
        for (float logit : logits) {
            max = Math.max(max, logit);
        }
        double sum = 0;
        for (float logit : logits) {
            sum += Math.exp(logit - max);
        }
        double logSum = max + Math.log(sum);
        float[] out = new float[logits.length];
        for (int i = 0; i < out.length; i++) {
            out[i] = (float) (logits[i] - logSum);
        }
        return out;
    }

    /** The k highest entries as (index, value) pairs, highest first (ties: lower index first). */
    public static List<int[]> topIndices(float[] values, int k) {
        Integer[] order = new Integer[values.length];
        for (int i = 0; i < order.length; i++) {
            order[i] = i;
        }
        Arrays.sort(order, (a, b) -> values[a] != values[b] ? Float.compare(values[b], values[a])
                : Integer.compare(a, b));
        return Arrays.stream(order).limit(k).map(i -> new int[] {i}).toList();
    }
}

package dev.expo.modeling.sampling;

import java.util.SplittableRandom;

/**
 * Picks the next token from processed logits: the argmax when greedy, otherwise a draw from the softmax with the
 * request's own seeded generator (the same seed gives the same tokens).
 */
public final class TokenSampler {

    private final SamplingParams params;
    private final SplittableRandom random;

    public TokenSampler(SamplingParams params) {
        this.params = params;
        this.random = params.seed().isPresent() ? new SplittableRandom(params.seed().getAsLong())
                : new SplittableRandom();
    }

    public int pick(float[] logits) {
        if (params.greedy()) {
            return argmax(logits);
        }
        double[] probabilities = LogitsProcessors.softmax(logits);
        double draw = random.nextDouble();
        double cumulative = 0;
        int last = -1;
        for (int i = 0; i < probabilities.length; i++) {
            if (probabilities[i] > 0) {
                cumulative += probabilities[i];
                last = i;
                if (draw < cumulative) {
                    return i;
                }
            }
        }
        return last >= 0 ? last : argmax(logits);
    }

    /** The first index of the largest value (torch.argmax's tie rule). */
    public static int argmax(float[] logits) {
        int best = 0;
        for (int i = 1; i < logits.length; i++) {
            if (logits[i] > logits[best]) {
                best = i;
            }
        }
        return best;
    }
}

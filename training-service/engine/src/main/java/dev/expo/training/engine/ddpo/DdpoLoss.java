package dev.expo.training.engine.ddpo;

import dev.expo.common.ExpoException;

/**
 * Muffin's DDPO objective in plain Java (thunlp/Muffin muffin/train/trainers.py: {@code compute_weighted_logp},
 * {@code dpo_loss}, {@code MuffinDPOTrainer.compute_loss} with DPO_weight 1, SFT_weight 0):
 * <pre>
 *   logp(y)  = sum_t w_t * m_t * logp_t            (sum form; / sum_t w_t * m_t in the average form)
 *   w_t      = gamma on the corrected tokens, 1 elsewhere; m_t = 1 on the response (final eos included)
 *   z        = beta * ((pc - pr) - (rc - rr))      (p = policy, r = reference; c = chosen, r = rejected)
 *   loss     = mean_i -logsigmoid(z_i)
 *   rewards  = beta * (policy - reference), chosen and rejected
 * </pre>
 * The model's autograd only has to carry the log-probs: {@link Batch#policyGradient} gives d loss / d logp of each
 * row, so backward runs on {@code sum(coefficient * logp)}, and micro batches of a global batch add up exactly.
 */
public final class DdpoLoss {

    /** beta: DPO temperature; gamma: weight of corrected tokens; average: the 1/N-normalised form. */
    public record Settings(double beta, double gamma, boolean average) {
        public Settings {
            if (!(beta > 0) || !Double.isFinite(beta)) {
                throw ExpoException.invalidArgument("beta", beta, "must be a positive number (the seed uses 0.1)");
            }
            if (!(gamma > 0) || !Double.isFinite(gamma)) {
                throw ExpoException.invalidArgument("gamma", gamma, "must be a positive number (1 = plain DPO)");
            }
        }
    }

    private DdpoLoss() {
    }

    /**
     * Per-token weights over the log-prob axis ({@code full[1:]}, length {@code sequenceLength - 1}): 0 on the
     * prompt (labels -100), gamma on the corrected positions of the response, 1 on its other tokens.
     */
    public static float[] tokenWeights(int sequenceLength, int promptLength, int[] corrected, double gamma) {
        float[] weights = new float[sequenceLength - 1];
        for (int t = promptLength; t < weights.length; t++) {
            weights[t] = 1f;
        }
        for (int t : corrected) {
            if (t >= promptLength && t < weights.length) {
                weights[t] = (float) gamma;
            }
        }
        return weights;
    }

    /** compute_weighted_logp of one row: weights already include the response mask. */
    public static double weightedLogp(float[] perTokenLogp, float[] weights, boolean average) {
        double sum = 0;
        double norm = 0;
        for (int t = 0; t < weights.length; t++) {
            if (weights[t] != 0) {
                sum += (double) weights[t] * perTokenLogp[t];
                norm += weights[t];
            }
        }
        return average ? sum / norm : sum;
    }

    /** The loss of B pairs, and what the optimizer step and the metrics need. */
    public record Batch(double[] losses, double[] chosenRewards, double[] rejectedRewards, double[] chosenGradient,
                        double[] rejectedGradient) {

        public double loss() {
            return mean(losses);
        }

        public double accuracy() {
            double correct = 0;
            for (int i = 0; i < losses.length; i++) {
                correct += chosenRewards[i] > rejectedRewards[i] ? 1 : 0;
            }
            return correct / losses.length;
        }

        public double margin() {
            return mean(chosenRewards) - mean(rejectedRewards);
        }

        /** d loss / d (policy chosen logp, policy rejected logp) of row i: the coefficients of the backward pass. */
        public double[] policyGradient(int i) {
            return new double[] {chosenGradient[i], rejectedGradient[i]};
        }

        private static double mean(double[] values) {
            double sum = 0;
            for (double v : values) {
                sum += v;
            }
            return sum / values.length;
        }
    }

    /**
     * @param normalizer the number of pairs the loss is averaged over: B for one batch, the global batch's size when
     *                   this is one micro batch of it (so the micro batches' gradients add up to the global one)
     */
    public static Batch of(Settings settings, double[] policyChosen, double[] policyRejected, double[] referenceChosen,
                           double[] referenceRejected, int normalizer) {
        int n = policyChosen.length;
        double[] losses = new double[n];
        double[] chosenRewards = new double[n];
        double[] rejectedRewards = new double[n];
        double[] dChosen = new double[n];
        double[] dRejected = new double[n];
        for (int i = 0; i < n; i++) {
            double z = settings.beta() * ((policyChosen[i] - policyRejected[i])
                    - (referenceChosen[i] - referenceRejected[i]));
            losses[i] = softplus(-z);                       // -logsigmoid(z), stable for any z
            double s = sigmoid(-z);                           // -d(-logsigmoid(z))/dz
            dChosen[i] = -settings.beta() * s / normalizer;
            dRejected[i] = settings.beta() * s / normalizer;
            chosenRewards[i] = settings.beta() * (policyChosen[i] - referenceChosen[i]);
            rejectedRewards[i] = settings.beta() * (policyRejected[i] - referenceRejected[i]);
        }
        return new Batch(losses, chosenRewards, rejectedRewards, dChosen, dRejected);
    }

    static double softplus(double x) {
        return Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
    }

    static double sigmoid(double x) {
        return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
    }
}

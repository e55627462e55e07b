package dev.expo.training.engine.ddpo;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.expo.checkpoint.SafetensorsFile;
import dev.expo.training.engine.data.CorrectedTokens;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.Arrays;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

/**
 * The ddpo-multimodal golden from the per-token log-probs on: token weights from our diff, weighted log-probs in the
 * sum form, losses, rewards and accuracy as Muffin computed them; then the gradient coefficients against a finite
 * difference of the loss.
 */
class DdpoLossGoldenTest {

    static final Path GOLDEN = Path.of(System.getProperty("expo.testdata", "../../testdata/fixtures"))
            .resolve("ddpo-multimodal/golden");

    @Test
    void weightsLogpsLossAndRewardsAreMuffins() throws Exception {
        JsonNode step = new ObjectMapper().readTree(GOLDEN.resolve("step.json").toFile());
        DdpoLoss.Settings settings = new DdpoLoss.Settings(0.1, 2.0, false);
        try (SafetensorsFile golden = SafetensorsFile.open(GOLDEN.resolve("step.safetensors"))) {
            float[] policy = golden.tensor("policy_per_token_logps").toFloats();          // [4, 50]
            float[] refChosen = golden.tensor("reference_chosen_per_token_logps").toFloats();  // [2, 50]
            float[] refRejected = golden.tensor("reference_rejected_per_token_logps").toFloats();  // [2, 37]
            float[] chosenWeight = golden.tensor("chosen_token_weight").toFloats();
            float[] rejectedWeight = golden.tensor("rejected_token_weight").toFloats();
            double[] pc = new double[2];
            double[] pr = new double[2];
            double[] rc = new double[2];
            double[] rr = new double[2];
            for (int i = 0; i < 2; i++) {
                JsonNode example = step.get("examples").get(i);
                long[] chosen = longs(example.get("chosen_input_ids"));
                long[] rejected = longs(example.get("rejected_input_ids"));
                int prompt = example.get("prompt_ids").size();
                CorrectedTokens diff = CorrectedTokens.diff(Arrays.copyOfRange(rejected, 1, rejected.length),
                        Arrays.copyOfRange(chosen, 1, chosen.length), 3);
                float[] wc = DdpoLoss.tokenWeights(chosen.length, prompt, diff.chosen(), settings.gamma());
                float[] wr = DdpoLoss.tokenWeights(rejected.length, prompt, diff.rejected(), settings.gamma());
                for (int t = prompt; t < wc.length; t++) {
                    assertThat(wc[t]).as("chosen %d weight at %d", i, t).isEqualTo(chosenWeight[i * 50 + t]);
                }
                for (int t = prompt; t < wr.length; t++) {
                    assertThat(wr[t]).as("rejected %d weight at %d", i, t).isEqualTo(rejectedWeight[i * 37 + t]);
                }
                pc[i] = DdpoLoss.weightedLogp(Arrays.copyOfRange(policy, i * 50, i * 50 + wc.length), wc, false);
                pr[i] = DdpoLoss.weightedLogp(Arrays.copyOfRange(policy, (2 + i) * 50, (2 + i) * 50 + wr.length), wr,
                        false);
                rc[i] = DdpoLoss.weightedLogp(Arrays.copyOfRange(refChosen, i * 50, i * 50 + wc.length), wc, false);
                rr[i] = DdpoLoss.weightedLogp(Arrays.copyOfRange(refRejected, i * 37, i * 37 + wr.length), wr, false);
            }
            close(pc, golden.tensor("policy_chosen_logps").toFloats());
            close(pr, golden.tensor("policy_rejected_logps").toFloats());
            close(rc, golden.tensor("reference_chosen_logps").toFloats());
            close(rr, golden.tensor("reference_rejected_logps").toFloats());
            DdpoLoss.Batch batch = DdpoLoss.of(settings, pc, pr, rc, rr, 2);
            close(batch.losses(), golden.tensor("losses").toFloats());
            close(batch.chosenRewards(), golden.tensor("chosen_rewards").toFloats());
            close(batch.rejectedRewards(), golden.tensor("rejected_rewards").toFloats());
            assertThat(batch.loss()).isCloseTo(golden.tensor("loss").toFloats()[0], within(1e-4));
            assertThat(batch.accuracy()).isEqualTo(step.get("results").get("reward_accuracies").get(0).asDouble() / 2
                    + step.get("results").get("reward_accuracies").get(1).asDouble() / 2);

            // The backward coefficients are d loss / d logp (checked by a central difference).
            double h = 1e-4;
            for (int i = 0; i < 2; i++) {
                double[] up = pc.clone();
                double[] down = pc.clone();
                up[i] += h;
                down[i] -= h;
                double numeric = (DdpoLoss.of(settings, up, pr, rc, rr, 2).loss()
                        - DdpoLoss.of(settings, down, pr, rc, rr, 2).loss()) / (2 * h);
                assertThat(batch.policyGradient(i)[0]).isCloseTo(numeric, within(1e-8));
                assertThat(batch.policyGradient(i)[1]).isCloseTo(-numeric, within(1e-8));
            }
        }
    }

    @Test
    void averageFormDividesByTheWeightsAndSettingsAreChecked() {
        float[] weights = DdpoLoss.tokenWeights(6, 2, new int[] {3}, 3.0);
        assertThat(weights).containsExactly(0f, 0f, 1f, 3f, 1f);
        float[] logps = {-9f, -9f, -1f, -2f, -4f};
        assertThat(DdpoLoss.weightedLogp(logps, weights, false)).isEqualTo(-11.0);
        assertThat(DdpoLoss.weightedLogp(logps, weights, true)).isEqualTo(-11.0 / 5);
        assertThatThrownBy(() -> new DdpoLoss.Settings(0, 2, false)).hasMessageContaining("beta");
        assertThatThrownBy(() -> new DdpoLoss.Settings(0.1, Double.NaN, false)).hasMessageContaining("gamma");
        // Extreme logits stay finite (-logsigmoid is computed as a stable softplus).
        DdpoLoss.Batch far = DdpoLoss.of(new DdpoLoss.Settings(1, 1, false), new double[] {-1e4}, new double[] {0},
                new double[] {0}, new double[] {0}, 1);
        assertThat(far.loss()).isCloseTo(1e4, within(1e-6));
    }

    private static void close(double[] actual, float[] expected) {
        assertThat(actual).hasSize(expected.length);
        for (int i = 0; i < expected.length; i++) {
            assertThat(actual[i]).isCloseTo(expected[i], within(1e-4 * Math.max(1, Math.abs(expected[i]))));
        }
    }

    private static long[] longs(JsonNode array) {
        long[] out = new long[array.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = array.get(i).asLong();
        }
        return out;
    }
}

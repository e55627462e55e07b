package dev.expo.modeling.sampling;

import dev.expo.common.ExpoException;
import org.junit.jupiter.api.Test;

import java.util.OptionalLong;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Each processor against transformers' (and OpenAI's) documented semantics, on hand-checked rows. */
class SamplingTest {

    private static final float NEG_INF = Float.NEGATIVE_INFINITY;

    private static SamplingParams params(float temperature, float topP, int topK, float repetition, float frequency,
                                         float presence, int ngram, Long seed) {
        return params(temperature, topP, topK, 0f, repetition, frequency, presence, ngram, seed);
    }

    private static SamplingParams params(float temperature, float topP, int topK, float minP, float repetition,
                                         float frequency, float presence, int ngram, Long seed) {
        return SamplingParams.builder().temperature(temperature).topP(topP).topK(topK).minP(minP)
                .repetitionPenalty(repetition).frequencyPenalty(frequency).presencePenalty(presence)
                .noRepeatNgramSize(ngram).seed(seed == null ? OptionalLong.empty() : OptionalLong.of(seed)).build();
    }

    @Test
    void repetitionPenaltyDividesPositiveAndMultipliesNegativeLogitsOfSeenTokensOnce() {
        float[] logits = {2f, -2f, 3f, 1f};
        LogitsProcessors.repetitionPenalty(logits, 2f, new int[] {0, 1, 0, 0}, 4);
        assertThat(logits).containsExactly(1f, -4f, 3f, 1f);
    }

    @Test
    void frequencyAndPresencePenaltiesCountOnlyTheOutput() {
        float[] logits = {5f, 5f, 5f};
        // prompt [0], output [1, 1, 2]
        LogitsProcessors.frequencyPresence(logits, 0.5f, 1f, new int[] {0, 1, 1, 2}, 1, 4);
        assertThat(logits).containsExactly(5f, 3f, 3.5f);
    }

    @Test
    void noRepeatNgramBansTheTokenThatWouldRepeatAnNgram() {
        float[] logits = {0f, 0f, 0f, 0f};
        // context 1 2 3 1 2: the bigram "2 3" was seen, the last token is 2, so 3 is banned (n = 2)
        LogitsProcessors.noRepeatNgram(logits, 2, new int[] {1, 2, 3, 1, 2}, 5);
        assertThat(logits).containsExactly(0f, 0f, 0f, NEG_INF);
        float[] trigram = {0f, 0f, 0f, 0f};
        LogitsProcessors.noRepeatNgram(trigram, 3, new int[] {1, 2, 3, 1, 2}, 5);
        assertThat(trigram).containsExactly(0f, 0f, 0f, NEG_INF);
    }

    @Test
    void topKKeepsTheKLargestAndTopPTheSmallestNucleus() {
        float[] logits = {1f, 4f, 3f, 2f};
        LogitsProcessors.topK(logits, 2);
        assertThat(logits).containsExactly(NEG_INF, 4f, 3f, NEG_INF);
        // probabilities ~ {0.032, 0.644, 0.237, 0.087}: top_p 0.8 keeps {1, 2}; 0.5 keeps {1}
        float[] nucleus = {1f, 4f, 3f, 2f};
        LogitsProcessors.topP(nucleus, 0.8f);
        assertThat(nucleus).containsExactly(NEG_INF, 4f, 3f, NEG_INF);
        float[] narrow = {1f, 4f, 3f, 2f};
        LogitsProcessors.topP(narrow, 0.5f);
        assertThat(narrow).containsExactly(NEG_INF, 4f, NEG_INF, NEG_INF);
    }

    @Test
    void minPDropsWhatIsLessLikelyThanAFractionOfTheMostLikelyAfterTemperature() {
        // probabilities ~ {0.032, 0.644, 0.237, 0.087}
        float[] tenth = {1f, 4f, 3f, 2f};
        LogitsProcessors.minP(tenth, 0.1f);   // below 0.0644
        assertThat(tenth).containsExactly(NEG_INF, 4f, 3f, 2f);
        float[] fifth = {1f, 4f, 3f, 2f};
        LogitsProcessors.minP(fifth, 0.2f);   // below 0.129
        assertThat(fifth).containsExactly(NEG_INF, 4f, 3f, NEG_INF);
        float[] all = {1f, 4f, 4f, 2f};
        LogitsProcessors.minP(all, 1f);       // only the most likely, ties included
        assertThat(all).containsExactly(NEG_INF, 4f, 4f, NEG_INF);
        // Temperature first (as transformers orders its warpers): at T = 2 the probabilities are ~ {0.101, 0.455,
        // 0.276, 0.167}, so min_p 0.25 (below 0.114) drops only token 0; at T = 1 it would drop token 3 too.
        float[] warm = {1f, 4f, 3f, 2f};
        LogitsProcessors.apply(warm, params(2f, 1f, 0, 0.25f, 1f, 0f, 0f, 0, 1L), new int[] {}, 0, 0);
        assertThat(warm).containsExactly(NEG_INF, 2f, 1.5f, 1f);
    }

    @Test
    void greedyIsTheArgmaxAndTheSameSeedGivesTheSameDraws() {
        float[] logits = {0.5f, 2f, 1.9f, -1f};
        assertThat(new TokenSampler(params(0f, 1f, 0, 1f, 0f, 0f, 0, null)).pick(logits)).isEqualTo(1);
        TokenSampler a = new TokenSampler(params(1f, 1f, 0, 1f, 0f, 0f, 0, 42L));
        TokenSampler b = new TokenSampler(params(1f, 1f, 0, 1f, 0f, 0f, 0, 42L));
        int[] counts = new int[4];
        for (int i = 0; i < 20_000; i++) {
            int token = a.pick(logits);
            assertThat(b.pick(logits)).isEqualTo(token);
            counts[token]++;
        }
        double[] expected = LogitsProcessors.softmax(logits);
        for (int t = 0; t < 4; t++) {
            assertThat(counts[t] / 20_000.0).isCloseTo(expected[t], org.assertj.core.data.Offset.offset(0.015));
        }
    }

    @Test
    void theProcessorsRunInTransformersOrderAndTemperatureOnlyWhenSampling() {
        float[] logits = {2f, 4f, 1f};
        LogitsProcessors.apply(logits, params(2f, 1f, 0, 2f, 0f, 0f, 0, 1L), new int[] {1}, 1, 1);
        assertThat(logits).containsExactly(1f, 1f, 0.5f);   // 4 / 2 (penalty), then / 2 (temperature)
        float[] greedy = {2f, 4f, 1f};
        LogitsProcessors.apply(greedy, params(0f, 0.1f, 1, 1f, 0f, 0f, 0, null), new int[] {}, 0, 0);
        assertThat(greedy).containsExactly(2f, 4f, 1f);
    }

    @Test
    void outOfRangeValuesNameTheirField() {
        assertThatThrownBy(() -> params(-1f, 1f, 0, 1f, 0f, 0f, 0, null)).isInstanceOf(ExpoException.class)
                .hasMessageContaining("temperature");
        assertThatThrownBy(() -> params(1f, 0f, 0, 1f, 0f, 0f, 0, null)).hasMessageContaining("top_p");
        assertThatThrownBy(() -> params(1f, 1f, -3, 1f, 0f, 0f, 0, null)).hasMessageContaining("top_k");
        assertThatThrownBy(() -> params(1f, 1f, 0, 1.5f, 1f, 0f, 0f, 0, null)).hasMessageContaining("min_p");
        assertThatThrownBy(() -> params(1f, 1f, 0, Float.NaN, 1f, 0f, 0f, 0, null)).hasMessageContaining("min_p");
        assertThatThrownBy(() -> params(1f, 1f, 0, 0f, 0f, 0f, 0, null)).hasMessageContaining("repetition_penalty");
        assertThatThrownBy(() -> params(1f, 1f, 0, 1f, 3f, 0f, 0, null)).hasMessageContaining("frequency_penalty");
        assertThatThrownBy(() -> params(1f, 1f, 0, 1f, 0f, 0f, -1, null)).hasMessageContaining("no_repeat_ngram_size");
    }
}

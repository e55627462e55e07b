package dev.expo.evaluation.engine;

import dev.expo.evaluation.engine.stats.PairedComparison;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

class EvaluationSummaryTest {

    static final PairedComparison.Bootstrap BOOTSTRAP = new PairedComparison.Bootstrap(500, 0, 0.95);

    static ScoredOutput out(String prompt, String variant, String text, double reward, String finish, double rep) {
        return new ScoredOutput(prompt, variant, "instruction " + prompt, text, reward, text.length(), finish, rep);
    }

    @Test
    void variantsArePairedWithTheReferenceByPrompt() {
        List<ScoredOutput> outputs = List.of(
                out("0", "sft", "ab", 0.0, "stop", 0),
                out("1", "sft", "abcd", 1.0, "stop", 0),
                out("2", "sft", "é", 2.0, "stop", 0),
                // expo answers in another order, one prompt the reference lacks
                out("2", "expo", "long answer", 1.0, "length", 0.9),
                out("0", "expo", "x", 3.0, "stop", 0.1),
                out("1", "expo", "yy", 1.0, "length", 0.6),
                out("9", "expo", "zzz", 5.0, "stop", 0));
        EvaluationSummary summary = EvaluationSummary.of(outputs, List.of("sft", "expo"), "sft", BOOTSTRAP);

        VariantSummary sft = summary.variants().get(0);
        assertThat(sft.variant()).isEqualTo("sft");
        assertThat(sft.againstReference().ties()).isEqualTo(3);
        assertThat(sft.againstReference().winRate()).isEqualTo(0.5);
        assertThat(sft.meanCharacters()).isCloseTo(7 / 3.0, within(1e-12));   // "é" is one character

        VariantSummary expo = summary.variants().get(1);
        assertThat(expo.outputs()).isEqualTo(4);
        assertThat(expo.reward().mean()).isCloseTo(2.5, within(1e-12));
        PairedComparison against = expo.againstReference();
        assertThat(against.count()).isEqualTo(3);   // prompt 9 has no reference output
        assertThat(against.wins()).isEqualTo(1);
        assertThat(against.ties()).isEqualTo(1);
        assertThat(against.losses()).isEqualTo(1);
        assertThat(against.winRate()).isEqualTo(0.5);
        assertThat(expo.lengthLimitShare()).isEqualTo(0.5);
        assertThat(expo.repeatingShare()).isEqualTo(0.5);
        assertThat(expo.meanSeqRep()).isCloseTo(0.4, within(1e-12));
        assertThat(summary.best().variant()).isEqualTo("expo");

        // the order outputs were scored in changes nothing, to the bit
        List<ScoredOutput> shuffled = new java.util.ArrayList<>(outputs);
        java.util.Collections.shuffle(shuffled, new java.util.Random(3));
        assertThat(EvaluationSummary.of(shuffled, List.of("sft", "expo"), "sft", BOOTSTRAP)).isEqualTo(summary);
    }

    @Test
    void inconsistentOutputsAreRefused() {
        assertThatThrownBy(() -> EvaluationSummary.of(List.of(out("0", "a", "x", 1, "stop", 0)), List.of("a"), "b",
                BOOTSTRAP)).hasMessageContaining("reference variant 'b' is not among");
        assertThatThrownBy(() -> EvaluationSummary.of(List.of(out("0", "c", "x", 1, "stop", 0)), List.of("a"), "a",
                BOOTSTRAP)).hasMessageContaining("names variant 'c'");
        assertThatThrownBy(() -> EvaluationSummary.of(List.of(out("0", "a", "x", 1, "stop", 0),
                out("0", "a", "y", 2, "stop", 0)), List.of("a"), "a", BOOTSTRAP)).hasMessageContaining("twice");
        assertThatThrownBy(() -> EvaluationSummary.of(List.of(out("0", "a", "x", 1, "stop", 0)), List.of("a", "b"),
                "a", BOOTSTRAP)).hasMessageContaining("'b' has no scored outputs");
    }
}

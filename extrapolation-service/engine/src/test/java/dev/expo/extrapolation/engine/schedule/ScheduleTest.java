package dev.expo.extrapolation.engine.schedule;

import dev.expo.common.ExpoException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.List;
import java.util.stream.IntStream;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class ScheduleTest {

    private static List<Double> alphas(LayerSchedule schedule, int n) {
        return IntStream.range(0, n).mapToObj(i -> schedule.alpha(i, n)).toList();
    }

    @Test
    void thirdsFollowTheSeedRuleTheLastGroupTakingTheRemainder() {
        LayerSchedule thirds = new LayerSchedule.LayerGroups(List.of(5.0, 10.0, 15.0));
        assertThat(alphas(thirds, 6)).containsExactly(5.0, 5.0, 10.0, 10.0, 15.0, 15.0);
        // n = 7, k = 2: [0,2) [2,4) [4,7)
        assertThat(alphas(thirds, 7)).containsExactly(5.0, 5.0, 10.0, 10.0, 15.0, 15.0, 15.0);
        // n = 32 (zephyr-7b), k = 10: 10 / 10 / 12 layers
        List<Double> deep = alphas(thirds, 32);
        assertThat(deep.stream().filter(a -> a == 5.0).count()).isEqualTo(10);
        assertThat(deep.stream().filter(a -> a == 15.0).count()).isEqualTo(12);
        // n < 3: k = 0, every layer falls in the last group
        assertThat(alphas(thirds, 2)).containsExactly(15.0, 15.0);
        assertThat(thirds.nonlayerDefault(6)).isEqualTo(10.0);
        assertThat(thirds.describe(3, 6)).isEqualTo("layer group 2 of 3");
    }

    @Test
    void nonlayerDefaultIsTheMedianOfTheLayerAlphas() {
        assertThat(new LayerSchedule.LayerGroups(List.of(15.0, 5.0)).nonlayerDefault(4)).isEqualTo(10.0);
        assertThat(new LayerSchedule.LinearRamp(2, 8).nonlayerDefault(4)).isEqualTo(5.0);
        assertThat(new LayerSchedule.PerLayer(List.of(1.0, 9.0, 3.0)).nonlayerDefault(3)).isEqualTo(3.0);
    }

    @Test
    void linearRampSpansFirstToLast() {
        assertThat(alphas(new LayerSchedule.LinearRamp(5, 15), 5)).containsExactly(5.0, 7.5, 10.0, 12.5, 15.0);
        assertThat(alphas(new LayerSchedule.LinearRamp(5, 15), 1)).containsExactly(5.0);
    }

    @Test
    void rulesComeFirstAndTheFirstMatchWins() {
        AlphaSchedule schedule = ScheduleYaml.parse("""
                layer_groups: [5, 10, 15]
                nonlayer_alpha: 3
                rules:
                  - glob: "*.self_attn.*"
                    alpha: 1
                  - regex: "model\\\\.layers\\\\.[0-9]+\\\\.self_attn\\\\.q_proj\\\\.weight"
                    alpha: 99
                  - glob: "model.embed_tokens.weight"
                    alpha: 0
                """);
        assertThat(schedule.assign("model.layers.4.self_attn.q_proj.weight", 4, 6).alpha()).isEqualTo(1);
        assertThat(schedule.assign("model.layers.4.self_attn.q_proj.weight", 4, 6).source())
                .isEqualTo("rule 1 (glob *.self_attn.*)");
        assertThat(schedule.assign("model.layers.4.mlp.up_proj.weight", 4, 6).alpha()).isEqualTo(15);
        assertThat(schedule.assign("model.embed_tokens.weight", -1, 6).alpha()).isEqualTo(0);
        assertThat(schedule.assign("lm_head.weight", -1, 6).alpha()).isEqualTo(3);
    }

    @Test
    void rulesWithoutALayerScheduleMustCoverEveryTensor() {
        AlphaSchedule schedule = ScheduleYaml.parse("rules: [{glob: 'model.layers.*', alpha: 2}]");
        assertThat(schedule.assign("model.layers.0.mlp.up_proj.weight", 0, 2).alpha()).isEqualTo(2);
        assertThatThrownBy(() -> schedule.assign("lm_head.weight", -1, 2))
                .isInstanceOf(ExpoException.class).hasMessageContaining("lm_head.weight");
    }

    @Test
    void theExampleSchedulesParse() throws java.io.IOException {
        try (var examples = java.nio.file.Files.list(java.nio.file.Path.of("../../examples"))) {
            List<java.nio.file.Path> files = examples.filter(p -> p.toString().endsWith(".yaml")).toList();
            assertThat(files).isNotEmpty();
            for (java.nio.file.Path file : files) {
                assertThat(ScheduleYaml.parse(java.nio.file.Files.readString(file))).as(file.toString()).isNotNull();
            }
        }
        AlphaSchedule thirds = ScheduleYaml.parse(java.nio.file.Files.readString(
                java.nio.file.Path.of("../../examples/layerwise-thirds.yaml")));
        assertThat(thirds.assign("model.layers.0.mlp.up_proj.weight", 0, 6).alpha()).isEqualTo(5);
        assertThat(thirds.assign("lm_head.weight", -1, 6).alpha()).isEqualTo(10);
    }

    @Test
    void perLayerNeedsOneAlphaPerLayer() {
        LayerSchedule perLayer = new LayerSchedule.PerLayer(List.of(1.0, 2.0));
        perLayer.checkDepth(2);
        assertThatThrownBy(() -> perLayer.checkDepth(6)).isInstanceOf(ExpoException.class)
                .hasMessageContaining("6 decoder layers");
    }

    static Stream<Arguments> badSchedules() {
        return Stream.of(
                Arguments.of("alpha: 12\nlayer_groups: [1]", "only one of"),
                Arguments.of("alpah: 12", "unknown key \"alpah\""),
                Arguments.of("alpha: twelve", "must be a number"),
                Arguments.of("layer_groups: []", "at least one"),
                Arguments.of("layer_groups: 5", "list of numbers"),
                Arguments.of("alpha: .nan", "finite"),
                Arguments.of("alpha: 1e40", "float32"),
                Arguments.of("linear_ramp: {first: 1}", "needs \"last\""),
                Arguments.of("rules: [{alpha: 1}]", "exactly one of glob, regex"),
                Arguments.of("rules: [{regex: '(', alpha: 1}]", "not a valid regular expression"),
                Arguments.of("rules: [{glob: 'a', glob2: 'b', alpha: 1}]", "unknown key"),
                Arguments.of("alpha: 1\nalpha: 2", "duplicate key"),
                Arguments.of("[1, 2]", "must be a YAML mapping"),
                Arguments.of("'{'", "must be a YAML mapping"),
                Arguments.of("{}", "give an alpha"),
                Arguments.of("alpha: [1", "not valid YAML"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("badSchedules")
    void badSchedulesAreClearInvalidArguments(String yaml, String expected) {
        assertThatThrownBy(() -> ScheduleYaml.parse(yaml))
                .isInstanceOfSatisfying(ExpoException.class,
                        e -> assertThat(e.kind()).isEqualTo(ExpoException.Kind.INVALID_ARGUMENT))
                .hasMessageContaining(expected);
    }
}

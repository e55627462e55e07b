package dev.expo.training.engine.optim;

import dev.expo.checkpoint.SafetensorsFile;
import dev.expo.checkpoint.TensorInfo;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

/** AdamW on the ddpo-multimodal golden (torch's gradients in, torch's parameters and moments out); schedules; scaler. */
class OptimizerTest {

    static final Path STEP = Path.of(System.getProperty("expo.testdata", "../../testdata/fixtures"))
            .resolve("ddpo-multimodal/golden/step.safetensors");

    @Test
    void oneAdamWStepIsTorchsOnEveryTrainableTensor() {
        try (SafetensorsFile golden = SafetensorsFile.open(STEP)) {
            Map<String, float[]> params = new LinkedHashMap<>();
            Map<String, float[]> grads = new LinkedHashMap<>();
            for (TensorInfo info : golden.tensors()) {
                if (info.name().startsWith("grad.")) {
                    String name = info.name().substring("grad.".length());
                    grads.put(name, golden.tensor(info.name()).toFloats());
                    params.put(name, golden.tensor("param_before." + name).toFloats());
                }
            }
            assertThat(params).hasSize(26);
            AdamW adamW = new AdamW(AdamW.Settings.torchDefaults(0.01));
            adamW.step(params, grads, 0.001);
            for (String name : params.keySet()) {
                expectClose(params.get(name), golden.tensor("param_after." + name).toFloats(), 1e-6, name);
                expectClose(adamW.state().get(name).expAvg(), golden.tensor("exp_avg." + name).toFloats(), 1e-9, name);
                expectClose(adamW.state().get(name).expAvgSq(), golden.tensor("exp_avg_sq." + name).toFloats(), 1e-12,
                        name);
            }
            assertThat(adamW.steps()).isEqualTo(1);
        }
    }

    @Test
    void schedulesAreHfs() {
        LearningRateSchedule linear = LearningRateSchedule.of(LearningRateSchedule.Kind.LINEAR, 1e-3, 0.03, 100);
        assertThat(linear.warmup()).isEqualTo(3);   // ceil(0.03 * 100)
        assertThat(linear.at(0)).isEqualTo(0.0);
        assertThat(linear.at(1)).isCloseTo(1e-3 / 3, within(1e-15));
        assertThat(linear.at(3)).isCloseTo(1e-3, within(1e-15));
        assertThat(linear.at(50)).isCloseTo(1e-3 * 50 / 97, within(1e-15));
        LearningRateSchedule cosine = LearningRateSchedule.of(LearningRateSchedule.Kind.COSINE, 1e-3, 0, 10);
        assertThat(cosine.at(0)).isEqualTo(1e-3);
        assertThat(cosine.at(5)).isCloseTo(5e-4, within(1e-15));
        assertThat(LearningRateSchedule.of(LearningRateSchedule.Kind.CONSTANT, 1e-3, 0, 10).at(9)).isEqualTo(1e-3);
        assertThatThrownBy(() -> LearningRateSchedule.of(LearningRateSchedule.Kind.LINEAR, -1, 0, 10))
                .hasMessageContaining("learning_rate");
    }

    @Test
    void clippingScalesToTheMaximumNormAndReportsTheNormBefore() {
        float[] a = {3, 0};
        float[] b = {0, 4};
        assertThat(GradientClipping.clip(List.of(a, b), 1.0)).isEqualTo(5.0);
        assertThat(GradientClipping.globalNorm(List.of(a, b))).isCloseTo(1.0, within(1e-6));
        float[] c = {0.3f};
        assertThat(GradientClipping.clip(List.of(c), 0)).isCloseTo(0.3, within(1e-7));
        assertThat(c[0]).isEqualTo(0.3f);   // 0 = off
    }

    @Test
    void lossScalerBacksOffOnAnInjectedOverflowAndGrowsAfterCleanSteps() {
        DynamicLossScaler scaler = DynamicLossScaler.torchDefaults();
        assertThat(scaler.scale()).isEqualTo(65536.0);
        float[] overflow = {1f, Float.POSITIVE_INFINITY};
        boolean finite = scaler.unscale(List.of(overflow));
        assertThat(finite).isFalse();   // the step is skipped
        scaler.update(!finite);
        assertThat(scaler.scale()).isEqualTo(32768.0);
        float[] grads = {32768f * 0.5f};
        assertThat(scaler.unscale(List.of(grads))).isTrue();
        assertThat(grads[0]).isEqualTo(0.5f);
        for (int i = 0; i < 2000; i++) {
            scaler.update(false);
        }
        assertThat(scaler.scale()).isEqualTo(65536.0);
        assertThat(scaler.cleanSteps()).isZero();
    }

    private static void expectClose(float[] actual, float[] expected, double tolerance, String name) {
        assertThat(actual).hasSize(expected.length);
        for (int i = 0; i < expected.length; i++) {
            assertThat((double) actual[i]).as("%s[%d]", name, i).isCloseTo(expected[i], within(tolerance));
        }
    }
}

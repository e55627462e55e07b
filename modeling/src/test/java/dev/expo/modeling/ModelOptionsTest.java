package dev.expo.modeling;

import ai.djl.ndarray.types.DataType;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** inference.device: each choice, with and without a GPU in sight; an asked-for GPU that is not there is refused. */
class ModelOptionsTest {

    @Test
    void withAGpuEachChoiceRunsWhereItSays() {
        assertThat(ModelOptions.of("cpu", 1).device().isGpu()).isFalse();
        assertThat(ModelOptions.of("gpu", 1)).satisfies(o -> {
            assertThat(o.device().isGpu()).isTrue();
            assertThat(o.computeType()).isEqualTo(DataType.FLOAT16);
        });
        assertThat(ModelOptions.of("gpu-fp32", 2).computeType()).isEqualTo(DataType.FLOAT32);
        assertThat(ModelOptions.of("auto", 1).device().isGpu()).isTrue();
    }

    @Test
    void withoutAGpuAutoTakesTheCpuAndAnAskedForGpuIsRefusedBeforeAnyModelLoads() {
        assertThat(ModelOptions.of("auto", 0)).isEqualTo(ModelOptions.cpu());
        for (String choice : new String[] {"gpu", "gpu-fp32"}) {
            assertThatThrownBy(() -> ModelOptions.of(choice, 0))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageStartingWith("device " + choice + " needs a GPU, but PyTorch sees none")
                    .hasMessageContaining("docs/gpu.md");
        }
        assertThatThrownBy(() -> ModelOptions.of("tpu", 0)).hasMessage(
                "device must be cpu, gpu, gpu-fp32 or auto, not tpu");
    }
}

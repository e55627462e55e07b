package dev.expo.inference.config;

import dev.expo.modeling.cpu.MatrixKernels;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** inference.cpu-kernels: each value picks the kernels it names; an unknown one stops the service with a message. */
class CpuKernelsConfigTest {

    @Test
    void javaAutoAndNativePickTheirKernels() {
        assertThat(EngineProducer.cpuKernels("java").description()).startsWith("Java Vector API");
        assertThat(EngineProducer.cpuKernels("AUTO").description())
                .startsWith(MatrixKernels.nativeAvailable() ? "compiled" : "Java Vector API");
        if (MatrixKernels.nativeAvailable()) {
            assertThat(EngineProducer.cpuKernels("native").description()).startsWith("compiled");
        } else {
            assertThatThrownBy(() -> EngineProducer.cpuKernels("native"))
                    .hasMessageContaining("inference.cpu-kernels=native, but there are no compiled kernels");
        }
    }

    @Test
    void anUnknownValueIsRefusedByName() {
        assertThatThrownBy(() -> EngineProducer.cpuKernels("fast"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("inference.cpu-kernels must be auto, native or java, not \"fast\"");
    }
}

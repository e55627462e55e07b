package dev.expo.inference.config;

import dev.expo.modeling.cpu.Kernels;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** inference.cpu-kernels: each value picks the kernels it names; an unknown one stops the service with a message. */
class CpuKernelsConfigTest {

    @AfterEach
    void restore() {
        EngineProducer.useCpuKernels("auto");
    }

    @Test
    void javaAutoAndNativePickTheirKernels() {
        EngineProducer.useCpuKernels("java");
        assertThat(Kernels.implementation()).startsWith("Java Vector API");
        EngineProducer.useCpuKernels("AUTO");
        assertThat(Kernels.implementation()).startsWith(Kernels.nativeAvailable() ? "compiled" : "Java Vector API");
        if (Kernels.nativeAvailable()) {
            EngineProducer.useCpuKernels("native");
            assertThat(Kernels.implementation()).startsWith("compiled");
        } else {
            assertThatThrownBy(() -> EngineProducer.useCpuKernels("native"))
                    .hasMessageContaining("inference.cpu-kernels=native, but there are no compiled kernels");
        }
    }

    @Test
    void anUnknownValueIsRefusedByName() {
        assertThatThrownBy(() -> EngineProducer.useCpuKernels("fast"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("inference.cpu-kernels must be auto, native or java, not \"fast\"");
    }
}

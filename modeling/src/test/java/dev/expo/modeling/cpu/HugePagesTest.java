package dev.expo.modeling.cpu;

import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static org.assertj.core.api.Assertions.assertThat;

/** Weight memory: the size asked for, aligned, zeroed, writable to its last byte, and given back when closed. */
class HugePagesTest {

    @Test
    void largeBlocksAreAlignedZeroedAndWritableSmallOnesArePlain() {
        for (long bytes : new long[] {9L * (1 << 20) + 3, 1000}) {
            try (Arena arena = Arena.ofShared()) {
                MemorySegment memory = HugePages.allocate(arena, bytes);
                assertThat(memory.byteSize()).isEqualTo(bytes);
                assertThat(memory.address() % 64).isZero();
                if (bytes > 8 << 20 && System.getProperty("os.name").startsWith("Linux")) {
                    assertThat(memory.address() % (2 << 20)).as("2 MiB-aligned").isZero();
                }
                for (long at = 0; at < bytes; at += 4093) {
                    assertThat(memory.get(ValueLayout.JAVA_BYTE, at)).isZero();
                }
                memory.set(ValueLayout.JAVA_BYTE, 0, (byte) 7);
                memory.set(ValueLayout.JAVA_BYTE, bytes - 1, (byte) 9);
                assertThat(memory.get(ValueLayout.JAVA_BYTE, bytes - 1)).isEqualTo((byte) 9);
            }
        }
    }
}

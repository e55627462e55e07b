package dev.expo.checkpoint;

import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;

class DtypesTest {

    @Test
    void bf16RoundsToNearestEvenLikePyTorch() {
        // 1 + 2^-8 is exactly halfway between two bf16 values: ties go to the even mantissa (1.0).
        assertThat(Dtypes.floatToBf16(1.0f + 0x1p-8f)).isEqualTo((short) 0x3F80);
        // 1 + 3*2^-8 is halfway between 1+2^-7 (odd) and 1+2^-6 (even): rounds up to even.
        assertThat(Dtypes.floatToBf16(1.0f + 3 * 0x1p-8f)).isEqualTo((short) 0x3F82);
        assertThat(Dtypes.floatToBf16(Float.NaN)).isEqualTo((short) 0x7FC0);
        assertThat(Dtypes.floatToBf16(Float.intBitsToFloat(0xFF800001))).isEqualTo((short) 0x7FC0);
        assertThat(Dtypes.floatToBf16(Float.POSITIVE_INFINITY)).isEqualTo((short) 0x7F80);
        assertThat(Dtypes.floatToBf16(-0.0f)).isEqualTo((short) 0x8000);
        // The largest finite float rounds up to infinity, as in PyTorch.
        assertThat(Dtypes.floatToBf16(Float.MAX_VALUE)).isEqualTo((short) 0x7F80);
    }

    @Test
    void bf16RoundingPicksTheNearestRepresentable() {
        SplittableRandom random = new SplittableRandom(7);
        for (int i = 0; i < 200_000; i++) {
            float x = Float.intBitsToFloat(random.nextInt());
            if (!Float.isFinite(x) || Math.abs(x) > 1e38f) {
                continue;
            }
            short rounded = Dtypes.floatToBf16(x);
            double chosen = Dtypes.bf16ToFloat(rounded);
            double below = Dtypes.bf16ToFloat((short) (rounded - 1));
            double above = Dtypes.bf16ToFloat((short) (rounded + 1));
            double error = Math.abs(chosen - x);
            // Neighbours in bit order (skipping across zero and into NaN makes no neighbour).
            if (!Double.isNaN(below)) {
                assertThat(error).isLessThanOrEqualTo(Math.abs(below - x));
            }
            if (!Double.isNaN(above)) {
                assertThat(error).isLessThanOrEqualTo(Math.abs(above - x));
            }
        }
    }

    @Test
    void f16RoundTripsThroughTheStandardConversion() {
        assertThat(Float.float16ToFloat(Dtypes.floatToF16(65504f))).isEqualTo(65504f);
        assertThat(Float.float16ToFloat(Dtypes.floatToF16(65520f))).isInfinite();
        assertThat(Dtypes.floatToF16(Float.NaN) & 0x7E00).isEqualTo(0x7E00);
    }
}

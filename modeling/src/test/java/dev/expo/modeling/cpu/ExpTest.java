package dev.expo.modeling.cpu;

import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The float32 exp behind softmax and SiLU: close to the correctly rounded value over the whole range that matters,
 * and the same bits in every lane of the vector form as in the scalar tail (a row's values must not depend on where
 * it falls in a vector).
 */
class ExpTest {

    private static long ulps(float actual, double exact) {
        float rounded = (float) exact;
        return Math.abs((long) Float.floatToIntBits(actual) - Float.floatToIntBits(rounded));
    }

    @Test
    void withinTwoUlpsOfTheCorrectlyRoundedValue() {
        long worst = 0;
        for (float x = -87f; x <= 88f; x += 0.0013f) {
            worst = Math.max(worst, ulps(Kernels.exp(x), Math.exp(x)));
        }
        Random random = new Random(11);
        for (int i = 0; i < 200_000; i++) {
            float x = (float) (random.nextGaussian() * 4);
            worst = Math.max(worst, ulps(Kernels.exp(x), Math.exp(x)));
        }
        assertTrue(worst <= 2, "worst error " + worst + " ulp");
        assertEquals(1f, Kernels.exp(0f));
        assertTrue(Float.isNaN(Kernels.exp(Float.NaN)));
        assertTrue(Kernels.exp(-1000f) < 1.2e-38f && Kernels.exp(-1000f) >= 0f);
        assertTrue(Float.isFinite(Kernels.exp(1000f)));
    }

    @Test
    void vectorLanesAndTheScalarTailAgreeBitForBit() {
        Random random = new Random(5);
        for (int length : new int[] {1, 7, 8, 9, 23, 64, 129}) {
            float[] values = new float[length + 5];
            for (int i = 0; i < values.length; i++) {
                values[i] = (float) (random.nextGaussian() * 6);
            }
            for (int from = 0; from < 4; from++) {
                float[] v = values.clone();
                float max = 1.5f;
                float sum = Kernels.expShifted(v, from, from + length - 1, max);
                float[] expected = values.clone();
                float expectedSum = 0f;
                for (int j = from; j < from + length; j++) {
                    expected[j] = Kernels.exp(values[j] - max);
                    expectedSum += expected[j];
                }
                assertArrayEquals(expected, v, "length " + length + " from " + from);
                assertEquals(expectedSum, sum);
            }
        }
    }

    @Test
    void siluGateIsSiluOfTheGateTimesUp() {
        Random random = new Random(9);
        int inter = 37;
        float[] gateUp = new float[2 * inter];
        for (int i = 0; i < gateUp.length; i++) {
            gateUp[i] = (float) (random.nextGaussian() * 5);
        }
        float[] whole = new float[inter];
        Kernels.siluGate(gateUp, inter, whole, 0, inter);
        float[] pieces = new float[inter];
        Kernels.siluGate(gateUp, inter, pieces, 0, 5);
        Kernels.siluGate(gateUp, inter, pieces, 5, 21);
        Kernels.siluGate(gateUp, inter, pieces, 21, inter);
        assertArrayEquals(whole, pieces, "split differently, the same bits");
        for (int j = 0; j < inter; j++) {
            double g = gateUp[j];
            double expected = g / (1 + Math.exp(-g)) * gateUp[inter + j];
            assertEquals(expected, whole[j], 1e-6 * Math.max(1, Math.abs(expected)), "j " + j);
        }
    }
}

package dev.expo.extrapolation.engine.kernel;

import dev.expo.checkpoint.DType;
import dev.expo.checkpoint.Dtypes;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;

/** The SIMD kernel must agree with the scalar reference bit for bit, special values included. */
class KernelTest {

    private static final ValueLayout.OfShort SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat FLOAT = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    @ParameterizedTest(name = "alpha {0}")
    @ValueSource(floats = {12f, 0.3f, -1.5f, 1e30f, 5f})
    void vectorKernelEqualsScalarKernelOnBf16(float alpha) {
        int n = 10_007;   // not a multiple of the lane count: the tail runs too
        SplittableRandom random = new SplittableRandom(42);
        MemorySegment aligned = MemorySegment.ofArray(new short[n]);
        MemorySegment base = MemorySegment.ofArray(new short[n]);
        for (int i = 0; i < n; i++) {
            aligned.setAtIndex(SHORT, i, interestingBf16(random));
            base.setAtIndex(SHORT, i, interestingBf16(random));
        }
        assertSameOutput(aligned, base, DType.BF16, DType.BF16, n, alpha);
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(value = DType.class, names = {"BF16", "F16", "F32"})
    void everyDtypePairAgrees(DType out) {
        int n = 3001;
        SplittableRandom random = new SplittableRandom(7);
        MemorySegment aligned = MemorySegment.ofArray(new float[n]);
        MemorySegment base = MemorySegment.ofArray(new float[n]);
        for (int i = 0; i < n; i++) {
            aligned.setAtIndex(FLOAT, i, (float) random.nextGaussian() * 0.05f);
            base.setAtIndex(FLOAT, i, (float) random.nextGaussian() * 0.05f);
        }
        aligned.setAtIndex(FLOAT, 5, Float.NaN);
        aligned.setAtIndex(FLOAT, 6, Float.POSITIVE_INFINITY);
        assertSameOutput(aligned, base, DType.F32, out, n, 12f);
    }

    @ParameterizedTest(name = "alpha {0}")
    @ValueSource(floats = {12f, 0.7f})
    void scalarKernelIsThePyTorchFormula(float alpha) {
        // d = a - b; s = alpha * d; theta = a + s, each rounded to float32, then to bf16 (nearest even).
        SplittableRandom random = new SplittableRandom(3);
        int n = 2000;
        MemorySegment aligned = MemorySegment.ofArray(new short[n]);
        MemorySegment base = MemorySegment.ofArray(new short[n]);
        MemorySegment out = MemorySegment.ofArray(new short[n]);
        for (int i = 0; i < n; i++) {
            aligned.setAtIndex(SHORT, i, Dtypes.floatToBf16((float) random.nextGaussian()));
            base.setAtIndex(SHORT, i, Dtypes.floatToBf16((float) random.nextGaussian()));
        }
        new ScalarKernel().extrapolate(aligned, base, DType.BF16, out, DType.BF16, n, alpha, new NonFiniteCount());
        for (int i = 0; i < n; i++) {
            double a = Dtypes.bf16ToFloat(aligned.getAtIndex(SHORT, i));
            double b = Dtypes.bf16ToFloat(base.getAtIndex(SHORT, i));
            float d = (float) (a - b);
            float s = (float) ((double) alpha * d);
            float theta = (float) (a + s);
            assertThat(out.getAtIndex(SHORT, i)).isEqualTo(Dtypes.floatToBf16(theta));
        }
    }

    private static void assertSameOutput(MemorySegment aligned, MemorySegment base, DType in, DType outType, int n,
                                         float alpha) {
        MemorySegment scalar = MemorySegment.ofArray(new byte[n * outType.byteSize()]);
        MemorySegment vector = MemorySegment.ofArray(new byte[n * outType.byteSize()]);
        NonFiniteCount scalarCount = new NonFiniteCount();
        NonFiniteCount vectorCount = new NonFiniteCount();
        new ScalarKernel().extrapolate(aligned, base, in, scalar, outType, n, alpha, scalarCount);
        ExtrapolationKernel.best().extrapolate(aligned, base, in, vector, outType, n, alpha, vectorCount);
        assertThat(ExtrapolationKernel.best()).isInstanceOf(VectorKernel.class);
        assertThat(vector.mismatch(scalar)).isEqualTo(-1L);
        assertThat(vectorCount.nan()).isEqualTo(scalarCount.nan());
        assertThat(vectorCount.inf()).isEqualTo(scalarCount.inf());
    }

    /** Mostly ordinary weights, with zeros, subnormals, infinities, NaNs and huge values mixed in. */
    private static short interestingBf16(SplittableRandom random) {
        return switch (random.nextInt(20)) {
            case 0 -> (short) 0x7FC0;                       // NaN
            case 1 -> (short) 0xFF81;                       // NaN with payload
            case 2 -> (short) 0x7F80;                       // +inf
            case 3 -> (short) 0x0001;                       // subnormal
            case 4 -> (short) 0x8000;                       // -0
            case 5 -> (short) 0x7F7F;                       // largest finite
            case 6 -> (short) random.nextInt(1 << 16);      // any bit pattern
            default -> Dtypes.floatToBf16((float) random.nextGaussian() * 0.02f);
        };
    }
}

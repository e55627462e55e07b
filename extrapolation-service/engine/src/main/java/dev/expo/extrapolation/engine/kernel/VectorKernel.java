package dev.expo.extrapolation.engine.kernel;

import dev.expo.checkpoint.DType;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/**
 * The SIMD kernel for the common cases, BF16 -> BF16 and F32 -> F32, with exactly the scalar kernel's arithmetic
 * (lane-wise IEEE float ops, no FMA) and rounding; other dtype pairs and the tails go to {@link ScalarKernel}.
 * Requires {@code --add-modules jdk.incubator.vector}.
 */
final class VectorKernel implements ExtrapolationKernel {

    private static final VectorSpecies<Float> FLOATS = FloatVector.SPECIES_256;
    private static final VectorSpecies<Integer> INTS = IntVector.SPECIES_256;
    private static final VectorSpecies<Short> SHORTS = ShortVector.SPECIES_128;
    private static final int LANES = FLOATS.length();
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    static VectorKernel create() {
        return new VectorKernel();
    }

    @Override
    public void extrapolate(MemorySegment aligned, MemorySegment base, DType inType, MemorySegment out,
                            DType outType, int count, float alpha, NonFiniteCount nonFinite) {
        int vectorEnd;
        if (inType == DType.BF16 && outType == DType.BF16) {
            vectorEnd = bf16(aligned, base, out, count, alpha, nonFinite);
        } else if (inType == DType.F32 && outType == DType.F32) {
            vectorEnd = f32(aligned, base, out, count, alpha, nonFinite);
        } else {
            vectorEnd = 0;
        }
        ScalarKernel.extrapolateRange(aligned, base, inType, out, outType, vectorEnd, count, alpha, nonFinite);
    }

    private static int bf16(MemorySegment aligned, MemorySegment base, MemorySegment out, int count, float alpha,
                            NonFiniteCount nonFinite) {
        int end = count - count % LANES;
        for (int i = 0; i < end; i += LANES) {
            long offset = 2L * i;
            FloatVector a = widen(ShortVector.fromMemorySegment(SHORTS, aligned, offset, LE));
            FloatVector b = widen(ShortVector.fromMemorySegment(SHORTS, base, offset, LE));
            FloatVector theta = a.add(a.sub(b).mul(alpha));     // aligned + alpha * (aligned - base)
            IntVector bits = theta.reinterpretAsInts();
            // Round to nearest even: add 0x7FFF plus the lowest kept bit, keep the upper half.
            IntVector rounded = bits.add(bits.lanewise(VectorOperators.LSHR, 16).and(1)).add(0x7FFF)
                    .lanewise(VectorOperators.LSHR, 16);
            VectorMask<Integer> nan = bits.and(0x7FFFFFFF).compare(VectorOperators.GT, 0x7F800000);
            rounded = rounded.blend(0x7FC0, nan);
            VectorMask<Integer> nonFiniteLanes = rounded.and(0x7F80).compare(VectorOperators.EQ, 0x7F80);
            if (nonFiniteLanes.anyTrue()) {
                long nans = rounded.and(0x7F).compare(VectorOperators.NE, 0).and(nonFiniteLanes).trueCount();
                nonFinite.addNan(nans);
                nonFinite.addInf(nonFiniteLanes.trueCount() - nans);
            }
            ((ShortVector) rounded.convertShape(VectorOperators.I2S, SHORTS, 0)).intoMemorySegment(out, offset, LE);
        }
        return end;
    }

    /** BF16 bits -> float32: the bits become the upper half (sign extension is shifted out). */
    private static FloatVector widen(ShortVector bf16) {
        IntVector ints = (IntVector) bf16.convertShape(VectorOperators.S2I, INTS, 0);
        return ints.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
    }

    private static int f32(MemorySegment aligned, MemorySegment base, MemorySegment out, int count, float alpha,
                           NonFiniteCount nonFinite) {
        int end = count - count % LANES;
        for (int i = 0; i < end; i += LANES) {
            long offset = 4L * i;
            FloatVector a = FloatVector.fromMemorySegment(FLOATS, aligned, offset, LE);
            FloatVector b = FloatVector.fromMemorySegment(FLOATS, base, offset, LE);
            FloatVector theta = a.add(a.sub(b).mul(alpha));
            VectorMask<Float> nonFiniteLanes = theta.test(VectorOperators.IS_FINITE).not();
            if (nonFiniteLanes.anyTrue()) {
                long nans = theta.test(VectorOperators.IS_NAN).trueCount();
                nonFinite.addNan(nans);
                nonFinite.addInf(nonFiniteLanes.trueCount() - nans);
            }
            theta.intoMemorySegment(out, offset, LE);
        }
        return end;
    }
}

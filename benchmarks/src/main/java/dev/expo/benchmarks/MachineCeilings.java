package dev.expo.benchmarks;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.IntFunction;

/**
 * What this machine can do at most, measured in the same run as the figures it is read against: the fused
 * multiply-add peak (256-bit vectors, twelve independent chains, so neither latency nor memory limits it) and the
 * streaming read bandwidth from memory (a 512 MB array summed in order), on one thread and on every core.
 *
 * <p>A decode step at batch 1 reads every weight once for one row, so memory bounds it; at batch 8 a BF16 weight
 * feeds eight multiply-adds, and at the FMA peak the two cores would need about as many bytes a second as memory
 * gives (docs/benchmarks.md): both ceilings count.
 */
final class MachineCeilings {

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    private static final long FMA_ITERATIONS = 100_000_000L;
    private static final int READ_FLOATS = 1 << 27;   // 512 MB: far past any cache

    /** FMA peak and read bandwidth, each on one thread and on all cores. */
    record Ceilings(int threads, double fmaOne, double fmaAll, double readOne, double readAll) {
        String describe() {
            return String.format(Locale.ROOT, "Machine ceilings, measured now: FMA peak %.0f GFLOP/s on %d threads "
                    + "(%.0f on one); memory read %.1f GB/s on %d threads (%.1f on one)", fmaAll, threads, fmaOne,
                    readAll, threads, readOne);
        }
    }

    private MachineCeilings() {
    }

    static Ceilings measure() throws Exception {
        int threads = Runtime.getRuntime().availableProcessors();
        float[] data = new float[READ_FLOATS];
        for (int i = 0; i < data.length; i++) {
            data[i] = i & 7;
        }
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        try {
            fma(FMA_ITERATIONS / 20);   // compiled before it is timed
            read(data, 0, data.length / 8);
            double fmaOne = 0;
            double fmaAll = 0;
            double readOne = 0;
            double readAll = 0;
            for (int round = 0; round < 3; round++) {   // the best of three: the machine's speed drifts
                double flops = FMA_ITERATIONS * 12.0 * 2 * F.length();
                fmaOne = Math.max(fmaOne, flops / seconds(pool, 1, t -> () -> fma(FMA_ITERATIONS)) / 1e9);
                fmaAll = Math.max(fmaAll, threads * flops / seconds(pool, threads, t -> () -> fma(FMA_ITERATIONS))
                        / 1e9);
                double bytes = 4.0 * data.length;
                readOne = Math.max(readOne, bytes / seconds(pool, 1, t -> () -> read(data, 0, data.length)) / 1e9);
                int share = data.length / threads / (4 * F.length()) * (4 * F.length());
                readAll = Math.max(readAll, (double) share * threads * 4
                        / seconds(pool, threads, t -> () -> read(data, t * share, (t + 1) * share)) / 1e9);
            }
            return new Ceilings(threads, fmaOne, fmaAll, readOne, readAll);
        } finally {
            pool.shutdownNow();
        }
    }

    /** Wall time of {@code count} tasks run at once. */
    private static double seconds(ExecutorService pool, int count, IntFunction<Callable<Float>> task)
            throws Exception {
        long start = System.nanoTime();
        Future<?>[] running = new Future<?>[count];
        for (int t = 0; t < count; t++) {
            running[t] = pool.submit(task.apply(t));
        }
        float sink = 0;
        for (Future<?> future : running) {
            sink += (Float) future.get();
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        if (Float.isNaN(sink)) {
            throw new IllegalStateException("unreachable: keeps the results alive");
        }
        return seconds;
    }

    /** Twelve chains of multiply-adds: enough in flight to cover two units' latency. */
    private static float fma(long iterations) {
        FloatVector m = FloatVector.broadcast(F, 0.9999f);
        FloatVector c = FloatVector.broadcast(F, 0.0001f);
        FloatVector a0 = FloatVector.broadcast(F, 1f);
        FloatVector a1 = a0;
        FloatVector a2 = a0;
        FloatVector a3 = a0;
        FloatVector a4 = a0;
        FloatVector a5 = a0;
        FloatVector a6 = a0;
        FloatVector a7 = a0;
        FloatVector a8 = a0;
        FloatVector a9 = a0;
        FloatVector a10 = a0;
        FloatVector a11 = a0;
        for (long i = 0; i < iterations; i++) {
            a0 = a0.fma(m, c);
            a1 = a1.fma(m, c);
            a2 = a2.fma(m, c);
            a3 = a3.fma(m, c);
            a4 = a4.fma(m, c);
            a5 = a5.fma(m, c);
            a6 = a6.fma(m, c);
            a7 = a7.fma(m, c);
            a8 = a8.fma(m, c);
            a9 = a9.fma(m, c);
            a10 = a10.fma(m, c);
            a11 = a11.fma(m, c);
        }
        return a0.add(a1).add(a2).add(a3).add(a4).add(a5).add(a6).add(a7).add(a8).add(a9).add(a10).add(a11)
                .reduceLanes(VectorOperators.ADD);
    }

    /** Sums [from, to) in order, four vectors at a time. */
    private static float read(float[] data, int from, int to) {
        FloatVector s0 = FloatVector.zero(F);
        FloatVector s1 = s0;
        FloatVector s2 = s0;
        FloatVector s3 = s0;
        int step = 4 * F.length();
        for (int i = from; i + step <= to; i += step) {
            s0 = s0.add(FloatVector.fromArray(F, data, i));
            s1 = s1.add(FloatVector.fromArray(F, data, i + F.length()));
            s2 = s2.add(FloatVector.fromArray(F, data, i + 2 * F.length()));
            s3 = s3.add(FloatVector.fromArray(F, data, i + 3 * F.length()));
        }
        return s0.add(s1).add(s2).add(s3).reduceLanes(VectorOperators.ADD);
    }
}

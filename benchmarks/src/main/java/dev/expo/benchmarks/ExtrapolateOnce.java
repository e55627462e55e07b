package dev.expo.benchmarks;

import dev.expo.common.store.ModelStore;
import dev.expo.extrapolation.engine.ExtrapolationPlan;
import dev.expo.extrapolation.engine.ExtrapolationResult;
import dev.expo.extrapolation.engine.ExtrapolationSpec;
import dev.expo.extrapolation.engine.Extrapolator;
import dev.expo.extrapolation.engine.Planner;
import dev.expo.extrapolation.engine.kernel.ExtrapolationKernel;
import dev.expo.extrapolation.engine.schedule.AlphaSchedule;

import java.nio.file.Path;

/**
 * One extrapolation with the service's engine and default settings, in its own process so its memory can be
 * measured: {@code ExtrapolateOnce STORE BASE ALIGNED OUTPUT ALPHA}. Prints the engine's own time (plan to
 * fsynced, published output), which excludes JVM start and the kernel's one-time JIT warm-up, as in the service.
 */
public final class ExtrapolateOnce {

    private ExtrapolateOnce() {
    }

    public static void main(String[] args) throws java.io.IOException {
        ModelStore store = new ModelStore(Path.of(args[0]));
        ExtrapolationSpec spec = new ExtrapolationSpec(args[1], args[2],
                AlphaSchedule.uniform(Double.parseDouble(args[4])), null);
        ExtrapolationKernel kernel = ExtrapolationKernel.best();
        Extrapolator extrapolator = new Extrapolator(store, kernel, Extrapolator.Settings.defaults());
        // Measure what a request to a running service costs: the service warmed its kernel up at start-up and has
        // its classes loaded, so this stand-in does both (and one small job) before the clock starts.
        ExtrapolationKernel.warmUp(kernel);
        warmUpOnSmallPair(kernel);
        long start = System.nanoTime();
        ExtrapolationResult result;
        try (ExtrapolationPlan plan = new Planner(store).plan(spec, 0)) {
            result = extrapolator.run(plan, args[3], true, p -> { }, () -> false);
        }
        double seconds = (System.nanoTime() - start) / 1e9;

        System.out.printf("seconds=%.4f input_bytes=%d output_bytes=%d shards=%d kernel=%s%n", seconds,
                result.inputBytes(), result.outputBytes(), result.shardCount(),
                ExtrapolationKernel.best().getClass().getSimpleName());
    }

    private static void warmUpOnSmallPair(ExtrapolationKernel kernel) throws java.io.IOException {
        Path scratch = java.nio.file.Files.createTempDirectory("expo-bench-warm-up");
        try {
            ModelStore store = new ModelStore(scratch);
            SyntheticLlama.writePair(new SyntheticLlama.Shape(512, 256, 704, 2), 1 << 20, scratch.resolve("a"),
                    scratch.resolve("b"));
            ExtrapolationSpec spec = new ExtrapolationSpec("a", "b", AlphaSchedule.uniform(2), null);
            try (ExtrapolationPlan plan = new Planner(store).plan(spec, 0)) {
                new Extrapolator(store, kernel, Extrapolator.Settings.defaults()).run(plan, "c", false, p -> { },
                        () -> false);
            }
        } finally {
            ModelStore.deleteTree(scratch);
        }
    }
}

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

    public static void main(String[] args) {
        ModelStore store = new ModelStore(Path.of(args[0]));
        ExtrapolationSpec spec = new ExtrapolationSpec(args[1], args[2],
                AlphaSchedule.uniform(Double.parseDouble(args[4])), null);
        ExtrapolationKernel kernel = ExtrapolationKernel.best();
        // The service warms its kernel up at start-up; so does this stand-in, before the clock starts.
        ExtrapolationKernel.warmUp(kernel);
        Extrapolator extrapolator = new Extrapolator(store, kernel, Extrapolator.Settings.defaults());
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
}

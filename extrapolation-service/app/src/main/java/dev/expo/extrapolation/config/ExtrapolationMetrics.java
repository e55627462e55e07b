package dev.expo.extrapolation.config;

import dev.expo.extrapolation.engine.ExtrapolationResult;
import dev.expo.extrapolation.engine.jobs.ExtrapolationJob;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import jakarta.inject.Singleton;

import java.time.Duration;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Prometheus metrics of the extrapolation service: jobs by outcome, job duration, input bytes processed, and the
 * throughput of the last successful job.
 */
@Singleton
public class ExtrapolationMetrics {

    private final MeterRegistry registry;
    private final Counter bytes;
    private final AtomicLong lastThroughput = new AtomicLong();

    public ExtrapolationMetrics(MeterRegistry registry) {
        this.registry = registry;
        this.bytes = Counter.builder("expo.extrapolation.input.bytes")
                .description("Input bytes (both models) read by successful jobs").baseUnit("bytes")
                .register(registry);
        Gauge.builder("expo.extrapolation.last.job.throughput.bytes.per.second", lastThroughput, AtomicLong::get)
                .description("Input bytes per second of the last successful job").register(registry);
    }

    public void recordFinished(ExtrapolationJob job) {
        String outcome = job.state().name().toLowerCase();
        Counter.builder("expo.extrapolation.jobs").description("Finished extrapolation jobs by outcome")
                .tag("outcome", outcome).register(registry).increment();
        if (job.startTime() != null && job.endTime() != null) {
            Timer.builder("expo.extrapolation.job.duration").description("Finished extrapolation jobs' wall time, by "
                            + "outcome").tag("outcome", outcome).register(registry)
                    .record(Duration.between(job.startTime(), job.endTime()));
        }
        ExtrapolationResult result = job.result();
        if (result != null) {
            bytes.increment(result.inputBytes());
            double seconds = result.duration().toNanos() / 1e9;
            if (seconds > 0) {
                lastThroughput.set((long) (result.inputBytes() / seconds));
            }
        }
    }
}

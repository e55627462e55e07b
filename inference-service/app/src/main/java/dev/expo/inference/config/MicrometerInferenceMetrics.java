package dev.expo.inference.config;

import dev.expo.inference.engine.InferenceMetrics;
import dev.expo.inference.engine.Outputs;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.Timer;
import jakarta.inject.Singleton;

import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The engine's reports as Prometheus metrics, per model: time to first token, inter-token latency (both with
 * histogram buckets), generated tokens (tokens/s is its rate), requests by finish reason (cancellations among them),
 * the running batch size and queue depth, and prefix cache hits.
 */
@Singleton
public class MicrometerInferenceMetrics implements InferenceMetrics {

    private final MeterRegistry registry;
    private final Map<String, AtomicInteger> running = new ConcurrentHashMap<>();
    private final Map<String, AtomicInteger> waiting = new ConcurrentHashMap<>();

    public MicrometerInferenceMetrics(MeterRegistry registry) {
        this.registry = registry;
    }

    @Override
    public void firstToken(String model, Duration timeToFirstToken) {
        latency("expo.inference.time.to.first.token", "from a generation's arrival (queueing included) to its first "
                + "token", model, Duration.ofMillis(1), Duration.ofMinutes(5))
                .record(timeToFirstToken);
        tokens(model).increment();
    }

    @Override
    public void token(String model, Duration interTokenLatency) {
        latency("expo.inference.inter.token.latency", "between one generated token and the next of the same "
                + "generation", model, Duration.ofNanos(100_000), Duration.ofSeconds(30))
                .record(interTokenLatency);
        tokens(model).increment();
    }

    /**
     * A latency timer: this instance's median and p95, and histogram buckets over the expected range, which Prometheus
     * can sum across instances and turn into any quantile ({@code histogram_quantile}), as vLLM's are used.
     */
    private Timer latency(String name, String description, String model, Duration least, Duration most) {
        return Timer.builder(name).description(description).tag("model", model).publishPercentiles(0.5, 0.95)
                .publishPercentileHistogram().minimumExpectedValue(least).maximumExpectedValue(most)
                .register(registry);
    }

    private Counter tokens(String model) {
        return Counter.builder("expo.inference.generated.tokens").tag("model", model)
                .description("tokens generated (streamed to clients); its rate is tokens/s").register(registry);
    }

    @Override
    public void finished(String model, Outputs.FinishReason reason, int generatedTokens) {
        Counter.builder("expo.inference.requests").tags(Tags.of("model", model, "finish_reason",
                reason.name().toLowerCase())).description("generations ended, by finish reason (stop, length, "
                + "cancelled: a client that cancelled, left or ran out of deadline)").register(registry).increment();
    }

    @Override
    public void prefixCacheHit(String model, int positions) {
        Counter.builder("expo.inference.prefix.cache.hits").tag("model", model)
                .description("generations that started from a parked KV cache").register(registry).increment();
        Counter.builder("expo.inference.prefix.cache.reused.positions").tag("model", model)
                .description("prompt positions taken from parked KV caches instead of computed").register(registry)
                .increment(positions);
    }

    @Override
    public void batch(String model, int runningNow, int waitingNow) {
        gauge("expo.inference.batch.running", "generations in the running batch (in cache slots) now", model, running)
                .set(runningNow);
        gauge("expo.inference.queue.depth", "generations waiting for a slot now", model, waiting).set(waitingNow);
        if (runningNow > 0) {
            // How many sequences share each decode step: the gauge shows now, this shows how batching goes.
            DistributionSummary.builder("expo.inference.batch.size").tag("model", model)
                    .description("generations in the batch, sampled at each scheduler iteration").register(registry)
                    .record(runningNow);
        }
    }

    private AtomicInteger gauge(String name, String description, String model, Map<String, AtomicInteger> values) {
        return values.computeIfAbsent(model, m -> {
            AtomicInteger value = new AtomicInteger();
            Gauge.builder(name, value, AtomicInteger::get).description(description).tag("model", m)
                    .register(registry);
            return value;
        });
    }
}

package dev.expo.inference.config;

import dev.expo.inference.engine.InferenceMetrics;
import dev.expo.inference.engine.Outputs;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.Timer;
import jakarta.inject.Singleton;

import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The engine's reports as Prometheus metrics, per model: time to first token, inter-token latency, generated
 * tokens (tokens/s is its rate), requests by finish reason (cancellations among them), and the running batch size
 * and queue depth.
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
        Timer.builder("expo.inference.time.to.first.token").tag("model", model).publishPercentiles(0.5, 0.95)
                .register(registry).record(timeToFirstToken);
        tokens(model).increment();
    }

    @Override
    public void token(String model, Duration interTokenLatency) {
        Timer.builder("expo.inference.inter.token.latency").tag("model", model).publishPercentiles(0.5, 0.95)
                .register(registry).record(interTokenLatency);
        tokens(model).increment();
    }

    private Counter tokens(String model) {
        return Counter.builder("expo.inference.generated.tokens").tag("model", model).register(registry);
    }

    @Override
    public void finished(String model, Outputs.FinishReason reason, int generatedTokens) {
        Counter.builder("expo.inference.requests").tags(Tags.of("model", model, "finish_reason",
                reason.name().toLowerCase())).register(registry).increment();
    }

    @Override
    public void batch(String model, int runningNow, int waitingNow) {
        gauge("expo.inference.batch.running", model, running).set(runningNow);
        gauge("expo.inference.queue.depth", model, waiting).set(waitingNow);
        if (runningNow > 0) {
            // How many sequences share each decode step: the gauge shows now, this shows how batching goes.
            DistributionSummary.builder("expo.inference.batch.size").tag("model", model).register(registry)
                    .record(runningNow);
        }
    }

    private AtomicInteger gauge(String name, String model, Map<String, AtomicInteger> values) {
        return values.computeIfAbsent(model, m -> registry.gauge(name, Tags.of("model", m), new AtomicInteger()));
    }
}

package dev.expo.inference.config;

import dev.expo.inference.engine.Outputs;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import org.junit.jupiter.api.Test;

import java.time.Duration;

import static org.assertj.core.api.Assertions.assertThat;

/** Every metric the engine reports is there per model, with its value and a description (Prometheus's HELP line). */
class MicrometerInferenceMetricsTest {

    @Test
    void eachReportLandsInItsMeterPerModelAndEveryMeterSaysWhatItCounts() {
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        MicrometerInferenceMetrics metrics = new MicrometerInferenceMetrics(registry);

        metrics.batch("a", 3, 5);
        metrics.batch("b", 1, 0);
        metrics.batch("a", 2, 4);
        metrics.firstToken("a", Duration.ofMillis(120));
        metrics.token("a", Duration.ofMillis(15));
        metrics.token("a", Duration.ofMillis(17));
        metrics.finished("a", Outputs.FinishReason.CANCELLED, 3);
        metrics.finished("a", Outputs.FinishReason.LENGTH, 9);
        metrics.prefixCacheHit("a", 40);

        assertThat(registry.get("expo.inference.batch.running").tag("model", "a").gauge().value()).isEqualTo(2);
        assertThat(registry.get("expo.inference.batch.running").tag("model", "b").gauge().value()).isEqualTo(1);
        assertThat(registry.get("expo.inference.queue.depth").tag("model", "a").gauge().value()).isEqualTo(4);
        assertThat(registry.get("expo.inference.batch.size").tag("model", "a").summary().count()).isEqualTo(2);
        assertThat(registry.get("expo.inference.generated.tokens").tag("model", "a").counter().count()).isEqualTo(3);
        assertThat(registry.get("expo.inference.time.to.first.token").tag("model", "a").timer()
                .totalTime(java.util.concurrent.TimeUnit.MILLISECONDS)).isEqualTo(120);
        assertThat(registry.get("expo.inference.inter.token.latency").tag("model", "a").timer().count()).isEqualTo(2);
        assertThat(registry.get("expo.inference.requests").tags("model", "a", "finish_reason", "cancelled").counter()
                .count()).isEqualTo(1);
        assertThat(registry.get("expo.inference.prefix.cache.reused.positions").tag("model", "a").counter().count())
                .isEqualTo(40);

        // (Micrometer's own percentile gauges aside: Prometheus shows them as quantiles of their timer.)
        assertThat(registry.getMeters().stream().filter(m -> !m.getId().getName().endsWith(".percentile")))
                .isNotEmpty()
                .allSatisfy(meter -> assertThat(meter.getId().getDescription()).as(meter.getId().getName())
                        .isNotBlank());
        assertThat(registry.getMeters().stream().map(Meter::getId).map(Meter.Id::getName).distinct())
                .contains("expo.inference.time.to.first.token", "expo.inference.inter.token.latency",
                        "expo.inference.generated.tokens", "expo.inference.requests", "expo.inference.batch.running",
                        "expo.inference.queue.depth", "expo.inference.batch.size",
                        "expo.inference.prefix.cache.hits");
    }
}

package dev.expo.gateway.ab;

import dev.expo.common.store.ModelStore;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import io.quarkus.runtime.ShutdownEvent;
import jakarta.enterprise.event.Observes;
import jakarta.inject.Inject;
import jakarta.inject.Singleton;
import org.jboss.logging.Logger;

import java.time.Clock;
import java.time.Duration;
import java.util.Optional;

/**
 * The gateway's A/B splits (in {@code <model store>/.gateway/splits.json}) with per-arm Prometheus meters:
 * requests, errors, generated tokens and latency, tagged by split and arm. The gRPC and HTTP APIs both route here.
 */
@Singleton
public class SplitTraffic {

    private static final Logger LOG = Logger.getLogger(SplitTraffic.class);

    private final Splits splits;
    private final MeterRegistry registry;
    private final java.util.concurrent.ScheduledExecutorService flusher =
            java.util.concurrent.Executors.newSingleThreadScheduledExecutor(Thread.ofPlatform().daemon()
                    .name("ab-counts").factory());

    /** A call routed to an arm; {@link #end} it once. */
    public final class Routed {
        private final String split;
        private final Splits.Arm arm;
        private final long start = System.nanoTime();
        private long tokens;
        private boolean ended;

        Routed(String split, Splits.Arm arm) {
            this.split = split;
            this.arm = arm;
        }

        public String split() {
            return split;
        }

        public Splits.Arm arm() {
            return arm;
        }

        public synchronized void tokens(int generated) {
            tokens += generated;
        }

        public void end(boolean error) {
            long generated;
            synchronized (this) {
                if (ended) {
                    return;
                }
                ended = true;
                generated = tokens;
            }
            Duration latency = Duration.ofNanos(System.nanoTime() - start);
            splits.ended(split, arm.name(), error, generated, latency);
            Timer.builder("expo.gateway.ab.latency").description("A/B arms: time from a call to its end")
                    .tags("split", split, "arm", arm.name(), "outcome", error ? "error" : "ok")
                    .register(registry).record(latency);
            if (error) {
                Counter.builder("expo.gateway.ab.errors").tags("split", split, "arm", arm.name())
                        .register(registry).increment();
            }
            if (generated > 0) {
                Counter.builder("expo.gateway.ab.generated.tokens").tags("split", split, "arm", arm.name())
                        .register(registry).increment(generated);
            }
        }
    }

    @Inject
    public SplitTraffic(ModelStore store, MeterRegistry registry) {
        this.splits = new Splits(store.root().resolve(".gateway").resolve("splits.json"), Clock.systemUTC(),
                store::exists);
        this.registry = registry;
        // The counts reach the file every few seconds (and at shutdown), not on every call.
        flusher.scheduleWithFixedDelay(this::flush, 5, 5, java.util.concurrent.TimeUnit.SECONDS);
    }

    public Splits splits() {
        return splits;
    }

    /** Who a call is for, so one user keeps one arm: the user it names (when it names one), else its key. */
    public static String stickyId(String user, String keyId) {
        return user != null && !user.isBlank() ? "user:" + user : "key:" + (keyId == null ? "anonymous" : keyId);
    }

    /** Routes a call for {@code model} when it is a split; empty when it is an ordinary model. */
    public Optional<Routed> route(String model, String stickyId) {
        return splits.route(model, stickyId).map(arm -> {
            Counter.builder("expo.gateway.ab.requests").description("A/B arms: calls routed to each arm")
                    .tags("split", model, "arm", arm.name()).register(registry).increment();
            return new Routed(model, arm);
        });
    }

    void flush() {
        try {
            splits.flush();
        } catch (RuntimeException e) {
            LOG.warnf("could not save the A/B counts: %s", e.getMessage());
        }
    }

    void onStop(@Observes ShutdownEvent event) {
        flusher.shutdownNow();
        flush();
    }
}

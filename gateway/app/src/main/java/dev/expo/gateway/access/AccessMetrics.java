package dev.expo.gateway.access;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/** Per-key meters, tagged with the key's id (never the key): calls by outcome, tokens, quota refusals, streams. */
public final class AccessMetrics {

    private final MeterRegistry registry;
    private final Quotas quotas;
    private final Map<String, Boolean> streamGauges = new ConcurrentHashMap<>();

    public AccessMetrics(MeterRegistry registry, Quotas quotas) {
        this.registry = registry;
        this.quotas = quotas;
    }

    /** A public call ended: the API ("grpc" or "http"), what it called and its status code. */
    public void call(String keyId, String api, String method, String code) {
        Counter.builder("expo.gateway.calls").description("Public calls, by key id, method and outcome")
                .tags("key", keyId, "api", api, "method", method, "code", code).register(registry).increment();
    }

    public void refused(String keyId, String limit) {
        Counter.builder("expo.gateway.quota.refusals").description("Calls refused for a key's quota")
                .tags("key", keyId, "limit", limit).register(registry).increment();
    }

    public void tokens(String keyId, int tokens) {
        if (tokens > 0) {
            Counter.builder("expo.gateway.generated.tokens").description("Tokens generated for a key")
                    .tags("key", keyId).register(registry).increment(tokens);
        }
    }

    /** Registers the key's open-streams gauge once. */
    public void watchStreams(String keyId) {
        streamGauges.computeIfAbsent(keyId, id -> {
            Gauge.builder("expo.gateway.streams.open", quotas, q -> q.openStreams(id))
                    .description("Streams a key has open").tags("key", id).register(registry);
            return Boolean.TRUE;
        });
    }
}

package dev.expo.gateway.routing;

import dev.expo.api.v1.ExtrapolationServiceGrpc;
import dev.expo.api.v1.InferenceServiceGrpc;
import dev.expo.api.v1.TrainingServiceGrpc;
import io.grpc.ManagedChannel;
import jakarta.annotation.PostConstruct;
import jakarta.annotation.PreDestroy;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Which backend serves which public service, and the gateway's one channel to each (over any number of replicas:
 * {@link BackendsConfig}, {@link BackendChannel}).
 */
@ApplicationScoped
public class Backends {

    @Inject
    BackendsConfig config;

    @Inject
    io.vertx.core.Vertx vertx;

    private final Map<String, ForwardingService.Backend> byService = new LinkedHashMap<>();

    @PostConstruct
    void wire() {
        byService.put(ExtrapolationServiceGrpc.SERVICE_NAME, backend("extrapolation-service", config.extrapolation()));
        byService.put(TrainingServiceGrpc.SERVICE_NAME, backend("training-service", config.training()));
        byService.put(InferenceServiceGrpc.SERVICE_NAME, backend("inference-service", config.inference()));
    }

    @PreDestroy
    void close() throws InterruptedException {
        for (ForwardingService.Backend backend : byService.values()) {
            ((ManagedChannel) backend.channel()).shutdown();
        }
        for (ForwardingService.Backend backend : byService.values()) {
            ManagedChannel channel = (ManagedChannel) backend.channel();
            if (!channel.awaitTermination(2, TimeUnit.SECONDS)) {
                channel.shutdownNow();
            }
        }
    }

    /**
     * The stub with its calls marked as being for {@code model}, so the inference replicas' policy can send them where
     * the model is loaded (the gateway's forwarding does this itself, from the request).
     */
    public static <S extends io.grpc.stub.AbstractStub<S>> S forModel(S stub, String model) {
        return model == null || model.isEmpty() ? stub : stub.withOption(ReplicaLoadBalancer.MODEL, model);
    }

    /** Public service name -> its backend, in a stable order. */
    public Map<String, ForwardingService.Backend> byService() {
        return byService;
    }

    public ForwardingService.Backend of(String serviceName) {
        ForwardingService.Backend backend = byService.get(serviceName);
        if (backend == null) {
            throw new IllegalArgumentException("no backend serves " + serviceName);
        }
        return backend;
    }

    private ForwardingService.Backend backend(String name, String address) {
        try {
            return new ForwardingService.Backend(name, address.strip(), BackendChannel.open(address,
                    new BackendChannel.Balancing(config.busyAt(), config.reresolveEvery().toSeconds()), vertx));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("expo.backends for " + name + ": " + e.getMessage(), e);
        }
    }
}

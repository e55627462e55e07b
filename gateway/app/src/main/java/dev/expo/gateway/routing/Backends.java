package dev.expo.gateway.routing;

import dev.expo.api.v1.ExtrapolationServiceGrpc;
import dev.expo.api.v1.InferenceServiceGrpc;
import dev.expo.api.v1.TrainingServiceGrpc;
import io.grpc.Channel;
import io.quarkus.grpc.GrpcClient;
import jakarta.annotation.PostConstruct;
import jakarta.enterprise.context.ApplicationScoped;
import org.eclipse.microprofile.config.Config;
import org.eclipse.microprofile.config.ConfigProvider;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Which backend serves which public service. Each backend is a gRPC client configured as
 * {@code quarkus.grpc.clients.<client>.host/port}.
 */
@ApplicationScoped
public class Backends {

    @GrpcClient("extrapolation")
    Channel extrapolation;

    @GrpcClient("training")
    Channel training;

    @GrpcClient("inference")
    Channel inference;

    private final Map<String, ForwardingService.Backend> byService = new LinkedHashMap<>();

    @PostConstruct
    void wire() {
        byService.put(ExtrapolationServiceGrpc.SERVICE_NAME, backend("extrapolation-service", "extrapolation",
                extrapolation));
        byService.put(TrainingServiceGrpc.SERVICE_NAME, backend("training-service", "training", training));
        byService.put(InferenceServiceGrpc.SERVICE_NAME, backend("inference-service", "inference", inference));
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

    private static ForwardingService.Backend backend(String name, String client, Channel channel) {
        Config config = ConfigProvider.getConfig();
        String host = config.getOptionalValue("quarkus.grpc.clients." + client + ".host", String.class)
                .orElse("localhost");
        int port = config.getOptionalValue("quarkus.grpc.clients." + client + ".port", Integer.class).orElse(9000);
        return new ForwardingService.Backend(name, host + ":" + port, channel);
    }
}

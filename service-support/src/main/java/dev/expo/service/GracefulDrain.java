package dev.expo.service;

import grpc.health.v1.HealthOuterClass.HealthCheckResponse.ServingStatus;
import io.quarkus.grpc.runtime.health.GrpcHealthStorage;
import io.quarkus.runtime.StartupEvent;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import jakarta.enterprise.inject.Instance;
import jakarta.inject.Inject;
import org.jboss.logging.Logger;

import java.util.ArrayList;
import java.util.List;

/**
 * Draining on SIGTERM: the service reports NOT_SERVING on the standard health service at once, so a gateway balancing
 * over its replicas (gRPC health checking, which watches it) sends it nothing new, while Quarkus' graceful shutdown
 * lets the calls already running finish (for up to {@code quarkus.shutdown.timeout}). A JVM shutdown hook, because
 * it must run as shutdown begins; Quarkus' shutdown delay ({@code quarkus.shutdown.delay-enabled}) would give that
 * moment as an event, but it puts a request filter in front of gRPC under which a client resetting its stream while
 * a response is written could fail the whole connection (ServingIT found it).
 */
@ApplicationScoped
public class GracefulDrain {

    private static final Logger LOG = Logger.getLogger(GracefulDrain.class);

    @Inject
    Instance<GrpcHealthStorage> health;

    void install(@Observes StartupEvent started) {
        if (!health.isResolvable()) {
            return;                                          // the gateway answers health itself
        }
        GrpcHealthStorage storage = health.get();
        Runtime.getRuntime().addShutdownHook(Thread.ofPlatform().name("drain").unstarted(() -> draining(storage)));
    }

    static void draining(GrpcHealthStorage storage) {
        List<String> services = new ArrayList<>(storage.getStatuses().keySet());
        services.add(GrpcHealthStorage.DEFAULT_SERVICE_NAME);
        for (String service : services) {
            storage.setStatus(service, ServingStatus.NOT_SERVING);
        }
        LOG.info("shutting down: reporting NOT_SERVING while running calls finish");
    }
}

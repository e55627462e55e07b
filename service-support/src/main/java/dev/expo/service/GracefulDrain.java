package dev.expo.service;

import grpc.health.v1.HealthOuterClass.HealthCheckResponse.ServingStatus;
import io.quarkus.grpc.runtime.health.GrpcHealthStorage;
import io.quarkus.runtime.ShutdownDelayInitiatedEvent;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import jakarta.enterprise.inject.Instance;
import jakarta.inject.Inject;
import org.jboss.logging.Logger;

import java.util.ArrayList;
import java.util.List;

/**
 * Draining on SIGTERM: for the shutdown delay ({@code quarkus.shutdown.delay}) the service still serves but reports
 * NOT_SERVING on the standard health service, so a gateway balancing over its replicas (gRPC health checking) sends it
 * nothing new; then Quarkus' graceful shutdown lets the calls already running finish (for up to
 * {@code quarkus.shutdown.timeout}) and refuses new ones with UNAVAILABLE.
 */
@ApplicationScoped
public class GracefulDrain {

    private static final Logger LOG = Logger.getLogger(GracefulDrain.class);

    @Inject
    Instance<GrpcHealthStorage> health;

    void draining(@Observes ShutdownDelayInitiatedEvent event) {
        if (!health.isResolvable()) {
            return;                                          // the gateway answers health itself
        }
        GrpcHealthStorage storage = health.get();
        List<String> services = new ArrayList<>(storage.getStatuses().keySet());
        services.add(GrpcHealthStorage.DEFAULT_SERVICE_NAME);
        for (String service : services) {
            storage.setStatus(service, ServingStatus.NOT_SERVING);
        }
        LOG.info("shutting down: reporting NOT_SERVING while running calls finish");
    }
}

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
 * Draining on SIGTERM: the process refuses new calls with UNAVAILABLE at once ({@link DrainingInterceptor}; the
 * gateway retries them on another replica) and reports NOT_SERVING on the standard health service (a Kubernetes
 * readiness probe takes the pod out of its Service), while Quarkus' graceful shutdown lets the calls already running
 * finish (for up to {@code quarkus.shutdown.timeout}). A JVM shutdown hook, because
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
        // the gateway answers health itself: it only stops taking calls
        GrpcHealthStorage storage = health.isResolvable() ? health.get() : null;
        Runtime.getRuntime().addShutdownHook(Thread.ofPlatform().name("drain").unstarted(() -> draining(storage)));
    }

    static void draining(GrpcHealthStorage storage) {
        DrainingInterceptor.drain();
        LOG.info("shutting down: new calls are refused (UNAVAILABLE) while running calls finish");
        if (storage == null) {
            return;
        }
        List<String> services = new ArrayList<>(storage.getStatuses().keySet());
        services.add(GrpcHealthStorage.DEFAULT_SERVICE_NAME);
        for (String service : services) {
            storage.setStatus(service, ServingStatus.NOT_SERVING);
        }
    }
}

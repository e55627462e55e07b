package dev.expo.service;

import io.vertx.core.Handler;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpConnection;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import jakarta.inject.Inject;

import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;

/**
 * Ends each client connection after a maximum age, as gRPC servers do with {@code maxConnectionAge}: the connection
 * gets an HTTP/2 GOAWAY (its open streams run on, for up to the grace period), and the client opens a new one, which
 * re-resolves the service's name. That is how a gateway balancing over a DNS name (a Kubernetes headless Service)
 * finds replicas that came up after it connected. The age varies by 10% either way so that connections made together
 * do not all end together. (Quarkus' Vert.x gRPC server has no such setting.)
 */
@ApplicationScoped
public class MaxConnectionAge {

    @Inject
    ServerConfig config;

    @Inject
    Vertx vertx;

    void install(@Observes Router router) {
        if (!config.maxConnectionAge().isZero()) {
            router.route().order(Integer.MIN_VALUE).handler(handler(vertx, config.maxConnectionAge(),
                    config.maxConnectionAgeGrace()));
        }
    }

    /** A route handler that schedules the end of each connection it first sees, then passes the request on. */
    public static Handler<RoutingContext> handler(Vertx vertx, Duration age, Duration grace) {
        Map<HttpConnection, Long> aging = new ConcurrentHashMap<>();
        return ctx -> {
            HttpConnection connection = ctx.request().connection();
            if (connection != null && !aging.containsKey(connection)) {
                long jittered = Math.max(1, (long) (age.toMillis() * ThreadLocalRandom.current().nextDouble(0.9, 1.1)));
                aging.put(connection, vertx.setTimer(jittered, id -> {
                    aging.remove(connection);
                    connection.shutdown(grace.toMillis(), TimeUnit.MILLISECONDS);
                }));
            }
            ctx.next();
        };
    }
}

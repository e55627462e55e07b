package dev.expo.gateway.routing;

import io.smallrye.config.ConfigMapping;
import io.smallrye.config.WithDefault;

import java.time.Duration;

/**
 * Where the backends are: {@code expo.backends.<name>} = {@code HOST:PORT}, replicas {@code HOST:PORT,HOST:PORT,...},
 * or {@code dns:///NAME:PORT} ({@link BackendChannel}).
 */
@ConfigMapping(prefix = "expo.backends")
public interface BackendsConfig {

    String extrapolation();

    String training();

    String inference();

    /**
     * How often a backend named by DNS ({@code dns:///NAME:PORT}) is looked up again, so replicas that came up since
     * get calls (and ones gone are let go). 0 = only when a connection fails.
     */
    @WithDefault("30s")
    Duration reresolveEvery();

    /**
     * Calls in flight on a replica from which a call for a model it has goes to a less busy replica without it (which
     * then loads it). 1: the least busy replica, ties to one that has the model; higher keeps a model on fewer
     * replicas (less memory, fewer loads) at the cost of latency. See ModelAffinity.
     */
    @WithDefault("1")
    int busyAt();
}

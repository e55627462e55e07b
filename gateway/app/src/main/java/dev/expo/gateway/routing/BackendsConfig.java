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
     * Calls in flight on a replica past which a call for a model it has spills to a replica without it (which then
     * loads it): best the replicas' batch size ({@code inference.batching.max-batch-size}). See ModelAffinity.
     */
    @WithDefault("16")
    int busyAt();
}

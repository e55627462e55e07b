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
     * get calls: the channel goes idle (running calls finish on their connections) and reconnects to every address
     * the name has then. 0 = only when a connection fails.
     */
    @WithDefault("30s")
    Duration reresolveEvery();
}

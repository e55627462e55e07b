package dev.expo.gateway.routing;

import io.smallrye.config.ConfigMapping;

/**
 * Where the backends are: {@code expo.backends.<name>} = {@code HOST:PORT}, replicas {@code HOST:PORT,HOST:PORT,...},
 * or {@code dns:///NAME:PORT} ({@link BackendChannel}).
 */
@ConfigMapping(prefix = "expo.backends")
public interface BackendsConfig {

    String extrapolation();

    String training();

    String inference();
}

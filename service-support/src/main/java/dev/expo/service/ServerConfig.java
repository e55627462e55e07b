package dev.expo.service;

import io.smallrye.config.ConfigMapping;
import io.smallrye.config.WithDefault;

import java.time.Duration;

/** How long a service keeps one client connection: {@code expo.server.*} ({@link MaxConnectionAge}). */
@ConfigMapping(prefix = "expo.server")
public interface ServerConfig {

    /** A connection is asked to go away (HTTP/2 GOAWAY) after this long, give or take 10%; 0 = never. */
    @WithDefault("5m")
    Duration maxConnectionAge();

    /** How long the streams still open on an aged connection may run before it is closed. */
    @WithDefault("10m")
    Duration maxConnectionAgeGrace();
}

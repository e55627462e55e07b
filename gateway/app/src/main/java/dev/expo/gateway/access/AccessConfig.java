package dev.expo.gateway.access;

import io.smallrye.config.ConfigMapping;
import io.smallrye.config.WithDefault;

import java.util.Optional;

/** Who may call the gateway (docs/api.md, docs/configuration.md). */
@ConfigMapping(prefix = "expo")
public interface AccessConfig {

    Auth auth();

    Quota quota();

    interface Auth {
        /** "keys" (every public call needs a key) or "open" (no keys checked; refused unless bound to loopback). */
        @WithDefault("keys")
        String mode();

        /** The key store; default {@code <model store>/.gateway/api-keys.json}. */
        Optional<String> keysFile();

        /**
         * Where to write a first admin key when no key exists yet (bin/expo-stack sets it; the file is owner-only).
         * Unset: with no keys, nothing is let in until one is made.
         */
        Optional<String> bootstrapKeyFile();
    }

    /** The limits of a key made without its own (0 = unlimited). */
    interface Quota {
        @WithDefault("600")
        int requestsPerMinute();

        @WithDefault("60000")
        int generatedTokensPerMinute();

        @WithDefault("16")
        int concurrentStreams();
    }
}

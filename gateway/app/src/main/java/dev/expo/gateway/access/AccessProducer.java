package dev.expo.gateway.access;

import dev.expo.common.store.ModelStore;
import io.micrometer.core.instrument.MeterRegistry;
import io.quarkus.runtime.StartupEvent;
import jakarta.enterprise.event.Observes;
import jakarta.enterprise.inject.Produces;
import jakarta.inject.Singleton;
import org.eclipse.microprofile.config.ConfigProvider;
import org.jboss.logging.Logger;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Clock;
import java.util.Set;

/** The gateway's access control from its settings; on a first start, the first admin key. */
public class AccessProducer {

    private static final Logger LOG = Logger.getLogger(AccessProducer.class);
    private static final Set<String> LOOPBACK = Set.of("127.0.0.1", "localhost", "::1", "[::1]");

    @Produces
    @Singleton
    AccessControl accessControl(AccessConfig config, ModelStore store, MeterRegistry registry) {
        boolean open = switch (config.auth().mode()) {
            case "keys" -> false;
            case "open" -> true;
            default -> throw new IllegalArgumentException("expo.auth.mode must be keys or open, not \""
                    + config.auth().mode() + "\"");
        };
        if (open) {
            String host = ConfigProvider.getConfig().getOptionalValue("quarkus.http.host", String.class)
                    .orElse("0.0.0.0");
            if (!LOOPBACK.contains(host)) {
                throw new IllegalStateException("expo.auth.mode=open checks no keys, so the gateway must listen on "
                        + "loopback only: set quarkus.http.host=127.0.0.1 (it is " + host + ")");
            }
        }
        Path file = config.auth().keysFile().map(Path::of)
                .orElse(store.root().resolve(".gateway").resolve("api-keys.json"));
        Quotas quotas = new Quotas();
        return new AccessControl(new ApiKeys(file, Clock.systemUTC()), quotas,
                new AccessMetrics(registry, quotas), open);
    }

    /** A default quota for keys made without their own. */
    @Produces
    @Singleton
    QuotaLimits defaultQuota(AccessConfig config) {
        return new QuotaLimits(config.quota().requestsPerMinute(), config.quota().generatedTokensPerMinute(),
                config.quota().concurrentStreams());
    }

    void onStart(@Observes StartupEvent event, AccessControl access, AccessConfig config) {
        if (access.open()) {
            LOG.warn("OPEN MODE (expo.auth.mode=open): no API keys are checked and every caller is an admin; "
                    + "for development on loopback only");
            return;
        }
        if (!access.keys().isEmpty()) {
            return;
        }
        if (config.auth().bootstrapKeyFile().isEmpty()) {
            LOG.warn("no API keys exist, so every public call is refused; start once with "
                    + "expo.auth.bootstrap-key-file=FILE to have a first admin key written there");
            return;
        }
        Path target = Path.of(config.auth().bootstrapKeyFile().get());
        ApiKeys.Created created = access.keys().create("local-admin", Role.ADMIN, QuotaLimits.UNLIMITED);
        try {
            if (target.getParent() != null) {
                Files.createDirectories(target.getParent());
            }
            Files.deleteIfExists(target);
            Files.createFile(target, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString(
                    "rw-------")));
            Files.writeString(target, created.secret() + "\n", StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write the first admin key to " + target, e);
        }
        LOG.infof("no API keys existed: made admin key %s (local-admin), written to %s", created.key().id(), target);
    }
}

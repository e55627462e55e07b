package dev.expo.gateway.access;

import dev.expo.common.ExpoException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Clock;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class ApiKeysTest {

    @TempDir
    Path dir;

    @Test
    void keysAreKeptHashedOwnerOnlyAndSurviveARestart() throws Exception {
        Path file = dir.resolve("api-keys.json");
        ApiKeys keys = new ApiKeys(file, Clock.systemUTC());
        ApiKeys.Created created = keys.create("app", Role.CLIENT, new QuotaLimits(1, 2, 3));
        assertThat(created.secret()).startsWith("expo-" + created.key().id() + "-");
        String stored = Files.readString(file);
        assertThat(stored).doesNotContain(created.secret()).doesNotContain(created.secret().substring(20))
                .contains(ApiKeys.sha256(created.secret()));
        assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(file))).isEqualTo("rw-------");

        ApiKeys reloaded = new ApiKeys(file, Clock.systemUTC());
        assertThat(reloaded.authenticate(created.secret())).get().extracting(ApiKey::name, ApiKey::role,
                ApiKey::quota).containsExactly("app", Role.CLIENT, new QuotaLimits(1, 2, 3));
    }

    @Test
    void wrongOrMalformedOrRevokedKeysAreRefused() {
        ApiKeys keys = new ApiKeys(dir.resolve("k.json"), Clock.systemUTC());
        ApiKeys.Created created = keys.create("app", Role.ADMIN, QuotaLimits.UNLIMITED);
        String secret = created.secret();
        String flipped = secret.substring(0, secret.length() - 1) + (secret.endsWith("A") ? "B" : "A");
        assertThat(keys.authenticate(flipped)).isEmpty();
        assertThat(keys.authenticate("expo-k-000000000000-" + secret.substring(secret.length() - 43))).isEmpty();
        assertThat(keys.authenticate("nonsense")).isEmpty();
        assertThat(keys.authenticate(null)).isEmpty();
        keys.revoke("app");
        assertThat(keys.authenticate(secret)).isEmpty();
        assertThat(keys.list(false)).isEmpty();
        assertThat(keys.list(true)).hasSize(1);
        // A revoked key's name may be used again.
        keys.create("app", Role.CLIENT, QuotaLimits.UNLIMITED);
    }

    @Test
    void namesAreCheckedAndUniqueAmongLiveKeys() {
        ApiKeys keys = new ApiKeys(dir.resolve("k.json"), Clock.systemUTC());
        keys.create("ci", Role.CLIENT, QuotaLimits.UNLIMITED);
        assertThatThrownBy(() -> keys.create("ci", Role.CLIENT, QuotaLimits.UNLIMITED))
                .isInstanceOfSatisfying(ExpoException.class, e -> assertThat(e.kind())
                        .isEqualTo(ExpoException.Kind.ALREADY_EXISTS));
        assertThatThrownBy(() -> keys.create("a b", Role.CLIENT, QuotaLimits.UNLIMITED))
                .isInstanceOf(ExpoException.class).hasMessageContaining("name");
        assertThatThrownBy(() -> keys.revoke("nobody")).isInstanceOfSatisfying(ExpoException.class,
                e -> assertThat(e.kind()).isEqualTo(ExpoException.Kind.NOT_FOUND));
    }
}

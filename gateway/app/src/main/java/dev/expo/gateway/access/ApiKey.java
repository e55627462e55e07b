package dev.expo.gateway.access;

import java.time.Instant;

/**
 * A key as the gateway keeps it: never the key itself, only its SHA-256. {@code id} is public and stable; meters and
 * logs name keys by it.
 */
public record ApiKey(String id, String name, Role role, String sha256, QuotaLimits quota, Instant createdAt,
                     Instant revokedAt) {

    public boolean revoked() {
        return revokedAt != null;
    }

    /** The key's first characters, to tell keys apart: the id, never the secret part. */
    public String prefix() {
        return ApiKeys.KEY_PREFIX + id;
    }

    ApiKey revokedAt(Instant when) {
        return new ApiKey(id, name, role, sha256, quota, createdAt, when);
    }
}

package dev.expo.gateway.access;

import java.util.Locale;

/**
 * The one place a public call is let in, for the gRPC API and the HTTP API alike: its bearer key is checked, its
 * role against what the call needs, and its key's quota. In open mode (loopback development only) every call is the
 * local admin, unlimited.
 */
public final class AccessControl {

    private final ApiKeys keys;
    private final Quotas quotas;
    private final AccessMetrics metrics;
    private final boolean open;

    public AccessControl(ApiKeys keys, Quotas quotas, AccessMetrics metrics, boolean open) {
        this.keys = keys;
        this.quotas = quotas;
        this.metrics = metrics;
        this.open = open;
    }

    public ApiKeys keys() {
        return keys;
    }

    public AccessMetrics metrics() {
        return metrics;
    }

    public boolean open() {
        return open;
    }

    /**
     * The caller behind an {@code authorization} header value, if it may do {@code what}, which needs {@code needed};
     * else {@link AccessDenied} saying why and what would do.
     */
    public Caller authorize(String authorization, Role needed, String what) {
        if (open) {
            return Caller.OPEN;
        }
        String secret = bearer(authorization);
        if (secret == null) {
            throw new AccessDenied(AccessDenied.Reason.UNAUTHENTICATED, what + " needs an API key: send "
                    + "\"authorization: Bearer KEY\" (bin/expo keys create makes one; bin/expo sends $EXPO_API_KEY)");
        }
        ApiKey key = keys.authenticate(secret).orElseThrow(() -> new AccessDenied(
                AccessDenied.Reason.UNAUTHENTICATED, "the API key sent is not valid (unknown, mistyped or revoked)"));
        Caller caller = Caller.of(key);
        if (!key.role().allows(needed)) {
            metrics.call(key.id(), "any", what, "PERMISSION_DENIED");
            throw new AccessDenied(AccessDenied.Reason.PERMISSION_DENIED, what + " needs the " + needed.label()
                    + " role; the " + caller.describe());
        }
        return caller;
    }

    /** Lets the caller's call in under its key's quota, or throws {@link Quotas.Exceeded}. */
    public Quotas.Admission admit(Caller caller, boolean stream) {
        if (caller == Caller.OPEN) {
            return UNLIMITED;
        }
        ApiKey key = keys.byId(caller.keyId());
        metrics.watchStreams(key.id());
        try {
            return quotas.admit(key, stream);
        } catch (Quotas.Exceeded e) {
            metrics.refused(key.id(), e.limit());
            throw e;
        }
    }

    private static String bearer(String authorization) {
        if (authorization == null) {
            return null;
        }
        String value = authorization.strip();
        if (value.length() > 7 && value.substring(0, 7).toLowerCase(Locale.ROOT).equals("bearer ")) {
            return value.substring(7).strip();
        }
        return null;
    }

    private static final Quotas.Admission UNLIMITED = new Quotas.Admission() {
        @Override
        public void charge(int generatedTokens) {
        }

        @Override
        public void release() {
        }
    };
}

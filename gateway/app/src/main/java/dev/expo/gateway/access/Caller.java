package dev.expo.gateway.access;

import io.grpc.Context;

/** Who is calling: the key that authenticated the call (or the open mode's local caller). */
public record Caller(String keyId, String name, Role role) {

    /** Open mode (loopback development only): every call is the local admin. */
    public static final Caller OPEN = new Caller("open", "open-mode", Role.ADMIN);

    static final Context.Key<Caller> CONTEXT = Context.key("expo.caller");

    /** The caller of the gRPC call running on this thread; null outside one. */
    public static Caller current() {
        return CONTEXT.get();
    }

    public static Caller of(ApiKey key) {
        return new Caller(key.id(), key.name(), key.role());
    }

    /** Who this is, for messages: "key k-0123456789ab (ci), a client key". */
    public String describe() {
        return this == OPEN ? "the open mode's caller" : "key " + keyId + " (" + name + "), a " + role.label() + " key";
    }
}

package dev.expo.common;

/**
 * A failure the caller can act on. Engines throw it; each service maps {@link Kind} to the matching gRPC status in
 * one place, so engine code never sees gRPC. Anything that is not an {@code ExpoException} is our bug and becomes
 * INTERNAL.
 */
public class ExpoException extends RuntimeException {

    /** What kind of failure this is; the names follow the gRPC status codes they map to. */
    public enum Kind {
        /** The request itself is wrong: a bad field value, a malformed file named by the request. */
        INVALID_ARGUMENT,
        /** A named model, adapter or job does not exist. */
        NOT_FOUND,
        /** The request is well-formed but the system is not in a state to run it (inputs disagree, output exists). */
        FAILED_PRECONDITION,
        /** A queue or limit is full; retry later. */
        RESOURCE_EXHAUSTED,
        /** The work was cancelled by its caller. */
        CANCELLED,
        /** The named thing exists already. */
        ALREADY_EXISTS,
        /** Not built yet. */
        UNIMPLEMENTED,
        /** A dependency (a backend, a disk) is not reachable right now. */
        UNAVAILABLE
    }

    private final Kind kind;

    public ExpoException(Kind kind, String message) {
        super(message);
        this.kind = kind;
    }

    public ExpoException(Kind kind, String message, Throwable cause) {
        super(message, cause);
        this.kind = kind;
    }

    public Kind kind() {
        return kind;
    }

    /** A bad value of a named request field, with the value and what is expected of it. */
    public static ExpoException invalidArgument(String field, Object value, String expectation) {
        return new ExpoException(Kind.INVALID_ARGUMENT, field + " = " + quote(value) + ": " + expectation);
    }

    public static ExpoException invalidArgument(String message) {
        return new ExpoException(Kind.INVALID_ARGUMENT, message);
    }

    public static ExpoException notFound(String message) {
        return new ExpoException(Kind.NOT_FOUND, message);
    }

    public static ExpoException failedPrecondition(String message) {
        return new ExpoException(Kind.FAILED_PRECONDITION, message);
    }

    public static ExpoException resourceExhausted(String message) {
        return new ExpoException(Kind.RESOURCE_EXHAUSTED, message);
    }

    public static ExpoException cancelled(String message) {
        return new ExpoException(Kind.CANCELLED, message);
    }

    private static String quote(Object value) {
        return value instanceof CharSequence s ? "\"" + s + "\"" : String.valueOf(value);
    }
}

package dev.expo.gateway.access;

/** A call refused before it ran: no valid key (UNAUTHENTICATED, HTTP 401) or the wrong role (PERMISSION_DENIED, 403). */
public final class AccessDenied extends RuntimeException {

    public enum Reason { UNAUTHENTICATED, PERMISSION_DENIED }

    private final Reason reason;

    AccessDenied(Reason reason, String message) {
        super(message);
        this.reason = reason;
    }

    public Reason reason() {
        return reason;
    }
}

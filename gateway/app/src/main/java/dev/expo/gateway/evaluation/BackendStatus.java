package dev.expo.gateway.evaluation;

import dev.expo.common.ExpoException;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;

/** A backend's status as the evaluation engine's exception, so a run fails with the backend's own code and words. */
final class BackendStatus {

    private BackendStatus() {
    }

    static RuntimeException toEngine(String backend, Throwable failure) {
        Status status = Status.fromThrowable(failure);
        String message = status.getDescription() == null ? status.getCode().name() : status.getDescription();
        ExpoException.Kind kind = switch (status.getCode()) {
            case INVALID_ARGUMENT, OUT_OF_RANGE -> ExpoException.Kind.INVALID_ARGUMENT;
            case NOT_FOUND -> ExpoException.Kind.NOT_FOUND;
            case FAILED_PRECONDITION -> ExpoException.Kind.FAILED_PRECONDITION;
            case RESOURCE_EXHAUSTED -> ExpoException.Kind.RESOURCE_EXHAUSTED;
            case CANCELLED -> ExpoException.Kind.CANCELLED;
            case ALREADY_EXISTS -> ExpoException.Kind.ALREADY_EXISTS;
            case UNIMPLEMENTED -> ExpoException.Kind.UNIMPLEMENTED;
            case UNAVAILABLE -> ExpoException.Kind.UNAVAILABLE;
            default -> null;
        };
        if (kind == null) {
            return new IllegalStateException(backend + ": " + status.getCode() + ": " + message, failure);
        }
        if (kind == ExpoException.Kind.UNAVAILABLE) {
            message = "the " + backend + " is not reachable (" + message + ")";
        }
        return new ExpoException(kind, message, failure);
    }

    static boolean is(Throwable failure, Status.Code code) {
        return failure instanceof StatusRuntimeException e && e.getStatus().getCode() == code;
    }
}

package dev.expo.service;

import dev.expo.common.ExpoException;
import io.grpc.Status;
import io.grpc.StatusException;
import io.grpc.StatusRuntimeException;
import org.jboss.logging.Logger;

import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletionException;

/**
 * The one place a service's exceptions become gRPC statuses. Engine exceptions carry their kind; a status from a
 * downstream call passes through; anything else is our bug: INTERNAL, the cause logged, no stack trace sent.
 */
public final class GrpcErrors {

    private static final Logger LOG = Logger.getLogger(GrpcErrors.class);

    private GrpcErrors() {
    }

    public static StatusRuntimeException toStatusException(Throwable failure) {
        return toStatus(failure).asRuntimeException();
    }

    public static Status toStatus(Throwable failure) {
        Throwable t = unwrap(failure);
        if (t instanceof ExpoException e) {
            return codeOf(e.kind()).withDescription(e.getMessage());
        }
        if (t instanceof StatusRuntimeException e) {
            return e.getStatus();
        }
        if (t instanceof StatusException e) {
            return e.getStatus();
        }
        if (t instanceof CancellationException) {
            return Status.CANCELLED.withDescription("cancelled");
        }
        LOG.error("internal error", t);
        return Status.INTERNAL.withDescription("internal error: " + t.getClass().getSimpleName()
                + (t.getMessage() == null ? "" : ": " + t.getMessage()) + " (details in the service log)");
    }

    public static Status codeOf(ExpoException.Kind kind) {
        return switch (kind) {
            case INVALID_ARGUMENT -> Status.INVALID_ARGUMENT;
            case NOT_FOUND -> Status.NOT_FOUND;
            case FAILED_PRECONDITION -> Status.FAILED_PRECONDITION;
            case RESOURCE_EXHAUSTED -> Status.RESOURCE_EXHAUSTED;
            case CANCELLED -> Status.CANCELLED;
            case ALREADY_EXISTS -> Status.ALREADY_EXISTS;
            case UNIMPLEMENTED -> Status.UNIMPLEMENTED;
            case UNAVAILABLE -> Status.UNAVAILABLE;
        };
    }

    private static Throwable unwrap(Throwable t) {
        Throwable current = t;
        while ((current instanceof CompletionException || current instanceof java.util.concurrent.ExecutionException)
                && current.getCause() != null) {
            current = current.getCause();
        }
        return current;
    }
}

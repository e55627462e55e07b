package dev.expo.gateway.openai;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.grpc.Status;

/** An error as OpenAI's API reports one: an HTTP status and {@code {"error": {message, type, param, code}}}. */
public final class OpenAiError extends RuntimeException {

    private final int httpStatus;
    private final String type;
    private final String param;
    private final String code;
    private final long retryAfterSeconds;

    OpenAiError(int httpStatus, String type, String param, String code, String message, long retryAfterSeconds) {
        super(message);
        this.httpStatus = httpStatus;
        this.type = type;
        this.param = param;
        this.code = code;
        this.retryAfterSeconds = retryAfterSeconds;
    }

    static OpenAiError invalid(String param, String message) {
        return new OpenAiError(400, "invalid_request_error", param, null, message, 0);
    }

    static OpenAiError of(int status, String type, String code, String message) {
        return new OpenAiError(status, type, null, code, message, 0);
    }

    /** A backend's gRPC status as the HTTP status and error type a client of OpenAI's API expects. */
    static OpenAiError fromGrpc(Status status) {
        String message = status.getDescription() == null ? status.getCode().name() : status.getDescription();
        return switch (status.getCode()) {
            case INVALID_ARGUMENT, FAILED_PRECONDITION, OUT_OF_RANGE ->
                    new OpenAiError(400, "invalid_request_error", null, null, message, 0);
            case NOT_FOUND -> new OpenAiError(404, "invalid_request_error", "model", "model_not_found", message, 0);
            case ALREADY_EXISTS -> new OpenAiError(409, "invalid_request_error", null, null, message, 0);
            case UNAUTHENTICATED -> new OpenAiError(401, "invalid_request_error", null, "invalid_api_key", message, 0);
            case PERMISSION_DENIED -> new OpenAiError(403, "permission_error", null, null, message, 0);
            case RESOURCE_EXHAUSTED -> new OpenAiError(429, "rate_limit_error", null, "rate_limit_exceeded", message,
                    1);
            case UNAVAILABLE -> new OpenAiError(503, "service_unavailable", null, null, message, 1);
            case DEADLINE_EXCEEDED -> new OpenAiError(504, "timeout", null, null, message, 0);
            case CANCELLED -> new OpenAiError(499, "cancelled", null, null, message, 0);
            default -> new OpenAiError(500, "server_error", null, null, message, 0);
        };
    }

    OpenAiError withRetryAfter(long seconds) {
        return new OpenAiError(httpStatus, type, param, code, getMessage(), seconds);
    }

    public int httpStatus() {
        return httpStatus;
    }

    public long retryAfterSeconds() {
        return retryAfterSeconds;
    }

    public ObjectNode json() {
        ObjectNode error = JsonNodeFactory.instance.objectNode();
        error.put("message", getMessage());
        error.put("type", type);
        if (param == null) {
            error.putNull("param");
        } else {
            error.put("param", param);
        }
        if (code == null) {
            error.putNull("code");
        } else {
            error.put("code", code);
        }
        ObjectNode root = JsonNodeFactory.instance.objectNode();
        root.set("error", error);
        return root;
    }
}

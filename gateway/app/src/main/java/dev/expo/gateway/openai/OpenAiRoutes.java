package dev.expo.gateway.openai;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.expo.api.v1.InferenceServiceGrpc;
import dev.expo.api.v1.ListModelsRequest;
import dev.expo.api.v1.ListModelsResponse;
import dev.expo.api.v1.ModelInfo;
import dev.expo.api.v1.ModelKind;
import dev.expo.gateway.ab.SplitTraffic;
import dev.expo.gateway.ab.Splits;
import dev.expo.gateway.access.AccessControl;
import dev.expo.gateway.access.AccessDenied;
import dev.expo.gateway.access.Caller;
import dev.expo.gateway.access.Quotas;
import dev.expo.gateway.access.Role;
import dev.expo.gateway.routing.Backends;
import dev.expo.gateway.routing.ForwardingService;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import io.vertx.ext.web.handler.BodyHandler;
import jakarta.enterprise.event.Observes;
import jakarta.inject.Inject;
import jakarta.inject.Singleton;

import java.io.IOException;
import java.time.Instant;
import java.util.HexFormat;
import java.util.concurrent.ThreadLocalRandom;

/**
 * The OpenAI-compatible HTTP API on the gateway's port: {@code POST /v1/chat/completions}, {@code POST
 * /v1/completions}, {@code GET /v1/models[/ID]}, and the A/B splits' counts at {@code GET /v1/expo/splits}
 * (admins). The same keys, roles and quotas as the gRPC API; errors in OpenAI's error JSON.
 */
@Singleton
public class OpenAiRoutes {

    private static final ObjectMapper JSON = new ObjectMapper()
            .registerModule(new com.fasterxml.jackson.datatype.jsr310.JavaTimeModule())
            .disable(com.fasterxml.jackson.databind.SerializationFeature.WRITE_DATES_AS_TIMESTAMPS);
    /** Enough for a few images as base64; more is refused with 413 before it is read. */
    static final long MAX_BODY_BYTES = 32L << 20;

    @Inject
    AccessControl access;

    @Inject
    SplitTraffic splits;

    @Inject
    Backends backends;

    void routes(@Observes Router router) {
        BodyHandler body = BodyHandler.create(false).setBodyLimit(MAX_BODY_BYTES);
        router.post("/v1/chat/completions").handler(body).handler(ctx -> completion(ctx, true));
        router.post("/v1/completions").handler(body).handler(ctx -> completion(ctx, false));
        router.get("/v1/models").handler(ctx -> models(ctx, null));
        router.get("/v1/models/*").handler(ctx -> models(ctx, ctx.request().path().substring("/v1/models/".length())));
        router.get("/v1/expo/splits").handler(this::splitCounts);
        router.route("/v1/*").handler(ctx -> sendError(ctx.response(), OpenAiError.of(404, "invalid_request_error",
                "unknown_url", "no such endpoint: " + ctx.request().method() + " " + ctx.request().path())));
    }

    private ForwardingService.Backend inference() {
        return backends.of(InferenceServiceGrpc.SERVICE_NAME);
    }

    private void completion(RoutingContext ctx, boolean chat) {
        String endpoint = chat ? "POST /v1/chat/completions" : "POST /v1/completions";
        Caller caller;
        try {
            caller = authorize(ctx, Role.CLIENT, endpoint);
        } catch (OpenAiError e) {
            sendError(ctx.response(), e);
            return;
        }
        Quotas.Admission admission = null;
        SplitTraffic.Routed routed = null;
        try {
            JsonNode body;
            try {
                body = JSON.readTree(ctx.body().buffer() == null ? new byte[0] : ctx.body().buffer().getBytes());
            } catch (IOException e) {
                throw OpenAiError.invalid(null, "the body is not valid JSON: " + e.getMessage());
            }
            OpenAiRequest request = chat ? OpenAiRequest.chat(body) : OpenAiRequest.completion(body);
            try {
                admission = access.admit(caller, true);
            } catch (Quotas.Exceeded e) {
                throw rateLimited(e);
            }
            // One user, one arm: OpenAI's "user" field, else the x-expo-user header (as on gRPC), else the key.
            String sticky = SplitTraffic.stickyId(request.user() != null ? request.user()
                    : ctx.request().getHeader("x-expo-user"), caller.keyId());
            routed = splits.route(request.model(), sticky).orElse(null);
            if (routed != null && request.adapterGiven()) {
                throw OpenAiError.invalid("expo", "model " + request.model() + " is an A/B split: its arms choose "
                        + "the adapter and its scale, so send neither");
            }
            String id = (chat ? "chatcmpl-" : "cmpl-") + HexFormat.of().toHexDigits(ThreadLocalRandom.current()
                    .nextLong());
            new CompletionCall(request, ctx.response(), Vertx.currentContext(), inference(), routed, admission,
                    caller, access.metrics(), endpoint, id, Instant.now().getEpochSecond()).start();
        } catch (OpenAiError e) {
            if (admission != null) {
                admission.release();
            }
            if (routed != null) {
                routed.end(true);
            }
            access.metrics().call(caller.keyId(), "http", endpoint, "HTTP_" + e.httpStatus());
            sendError(ctx.response(), e);
        }
    }

    private void models(RoutingContext ctx, String only) {
        try {
            authorizeRequest(ctx, Role.CLIENT, "GET /v1/models");
        } catch (OpenAiError e) {
            sendError(ctx.response(), e);
            return;
        }
        HttpServerResponse response = ctx.response();
        var vertx = Vertx.currentContext();
        InferenceServiceGrpc.newStub(inference().channel()).listModels(ListModelsRequest.newBuilder().setPageSize(1000)
                .build(), new StreamObserver<>() {
            @Override
            public void onNext(ListModelsResponse value) {
                vertx.runOnContext(v -> {
                    ArrayNode data = JSON.createArrayNode();
                    for (ModelInfo model : value.getModelsList()) {
                        if (model.getKind() == ModelKind.MODEL_KIND_LANGUAGE_MODEL
                                || model.getKind() == ModelKind.MODEL_KIND_MULTIMODAL) {
                            data.add(model(model.getName(), "expo"));
                        }
                    }
                    for (Splits.Split split : splits.splits().list()) {
                        data.add(model(split.name(), "expo-ab-split"));
                    }
                    if (only != null) {
                        for (JsonNode model : data) {
                            if (model.path("id").asText().equals(only)) {
                                sendJson(response, 200, (ObjectNode) model);
                                return;
                            }
                        }
                        sendError(response, OpenAiError.of(404, "invalid_request_error", "model_not_found",
                                "the model " + only + " does not exist"));
                        return;
                    }
                    ObjectNode list = JSON.createObjectNode().put("object", "list");
                    list.set("data", data);
                    sendJson(response, 200, list);
                });
            }

            @Override
            public void onError(Throwable t) {
                vertx.runOnContext(v -> sendError(response, OpenAiError.fromGrpc(Status.fromThrowable(t))));
            }

            @Override
            public void onCompleted() {
            }
        });
    }

    private void splitCounts(RoutingContext ctx) {
        try {
            authorizeRequest(ctx, Role.ADMIN, "GET /v1/expo/splits");
        } catch (OpenAiError e) {
            sendError(ctx.response(), e);
            return;
        }
        ObjectNode root = JSON.createObjectNode().put("object", "list");
        ArrayNode data = root.putArray("data");
        for (Splits.Split split : splits.splits().list()) {
            data.add(JSON.valueToTree(split));
        }
        sendJson(ctx.response(), 200, root);
    }

    private static ObjectNode model(String id, String owner) {
        return JSON.createObjectNode().put("id", id).put("object", "model").put("created", 0).put("owned_by", owner);
    }

    /** A call that streams nothing: authorized, and counted against its key's requests per minute. */
    private Caller authorizeRequest(RoutingContext ctx, Role role, String what) {
        Caller caller = authorize(ctx, role, what);
        try {
            access.admit(caller, false).release();
        } catch (Quotas.Exceeded e) {
            throw rateLimited(e);
        }
        return caller;
    }

    private static OpenAiError rateLimited(Quotas.Exceeded e) {
        return new OpenAiError(429, e.limit(), null, "rate_limit_exceeded", e.getMessage(), 0)
                .withRetryAfter(e.retryAfterSeconds());
    }

    private Caller authorize(RoutingContext ctx, Role role, String what) {
        try {
            return access.authorize(ctx.request().getHeader("authorization"), role, what);
        } catch (AccessDenied denied) {
            boolean unauthenticated = denied.reason() == AccessDenied.Reason.UNAUTHENTICATED;
            throw OpenAiError.of(unauthenticated ? 401 : 403, unauthenticated ? "invalid_request_error"
                    : "permission_error", unauthenticated ? "invalid_api_key" : "insufficient_role",
                    denied.getMessage());
        }
    }

    static void sendError(HttpServerResponse response, OpenAiError error) {
        if (response.ended() || response.closed()) {
            return;
        }
        if (error.retryAfterSeconds() > 0) {
            response.putHeader("retry-after", Long.toString(error.retryAfterSeconds()));
        }
        if (error.httpStatus() == 401) {
            response.putHeader("www-authenticate", "Bearer");
        }
        sendJson(response, error.httpStatus(), error.json());
    }

    private static void sendJson(HttpServerResponse response, int status, ObjectNode body) {
        try {
            response.setStatusCode(status).putHeader("content-type", "application/json")
                    .end(Buffer.buffer(JSON.writeValueAsBytes(body)));
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }
}

package dev.expo.gateway.openai;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.expo.api.v1.FinishReason;
import dev.expo.api.v1.GenerateRequest;
import dev.expo.api.v1.GenerateResponse;
import dev.expo.api.v1.GeneratedTokenLogprobs;
import dev.expo.api.v1.InferenceServiceGrpc;
import dev.expo.api.v1.TokenLogprob;
import dev.expo.gateway.ab.SplitTraffic;
import dev.expo.gateway.routing.Backends;
import dev.expo.gateway.routing.ForwardingService;
import dev.expo.gateway.access.AccessMetrics;
import dev.expo.gateway.access.Caller;
import dev.expo.gateway.access.Quotas;
import io.grpc.Status;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import io.vertx.core.Context;
import io.vertx.core.http.HttpServerResponse;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * One chat or text completion: its choices as concurrent Generate calls on the inference service, answered as one
 * JSON body or as server-sent events (a chunk per streamed piece, the usage chunk when asked, then
 * {@code data: [DONE]}). Everything that touches the HTTP response runs on the request's Vert.x context. A client
 * that goes away cancels every backend call at once, which frees their batch slots.
 */
final class CompletionCall {

    private static final ObjectMapper JSON = new ObjectMapper();

    private final OpenAiRequest request;
    private final HttpServerResponse response;
    private final Context context;
    private final ForwardingService.Backend inference;
    private final SplitTraffic.Routed routed;
    private final Quotas.Admission admission;
    private final Caller caller;
    private final AccessMetrics metrics;
    private final String endpoint;
    private final String id;
    private final long created;
    private final List<Choice> choices = new ArrayList<>();
    private boolean headersSent;
    private boolean over;
    private int done;

    private static final class Choice {
        final int index;
        final StringBuilder text = new StringBuilder();
        final List<GeneratedTokenLogprobs> logprobs = new ArrayList<>();
        ClientCallStreamObserver<GenerateRequest> call;
        FinishReason finish = FinishReason.FINISH_REASON_UNSPECIFIED;
        int promptTokens;
        int generatedTokens;
        boolean started;

        Choice(int index) {
            this.index = index;
        }
    }

    CompletionCall(OpenAiRequest request, HttpServerResponse response, Context context,
                   ForwardingService.Backend inference,
                   SplitTraffic.Routed routed, Quotas.Admission admission, Caller caller, AccessMetrics metrics,
                   String endpoint, String id, long created) {
        this.request = request;
        this.response = response;
        this.context = context;
        this.inference = inference;
        this.routed = routed;
        this.admission = admission;
        this.caller = caller;
        this.metrics = metrics;
        this.endpoint = endpoint;
        this.id = id;
        this.created = created;
    }

    void start() {
        response.closeHandler(ignored -> clientGone());
        for (int i = 0; i < request.choices().size(); i++) {
            choices.add(new Choice(i));
        }
        for (Choice choice : choices) {
            GenerateRequest generate = request.choices().get(choice.index);
            if (routed != null) {
                GenerateRequest.Builder b = generate.toBuilder().setModel(routed.arm().model())
                        .setAdapter(routed.arm().adapter() == null ? "" : routed.arm().adapter());
                if (routed.arm().adapterScale() != null) {
                    b.setAdapterScale(routed.arm().adapterScale());
                }
                generate = b.build();
            }
            Backends.forModel(InferenceServiceGrpc.newStub(inference.channel()), generate.getModel())
                    .generate(generate, new ClientResponseObserver<GenerateRequest,
                    GenerateResponse>() {
                @Override
                public void beforeStart(ClientCallStreamObserver<GenerateRequest> call) {
                    choice.call = call;
                }

                @Override
                public void onNext(GenerateResponse value) {
                    context.runOnContext(v -> onResponse(choice, value));
                }

                @Override
                public void onError(Throwable t) {
                    context.runOnContext(v -> onFailure(ForwardingService.mapBackendStatus(Status.fromThrowable(t),
                            inference)));
                }

                @Override
                public void onCompleted() {
                    context.runOnContext(v -> onChoiceDone());
                }
            });
        }
    }

    private void onResponse(Choice choice, GenerateResponse value) {
        if (over) {
            return;
        }
        int tokens = value.getTokenIdsCount();
        choice.generatedTokens += tokens;
        admission.charge(tokens);
        metrics.tokens(caller.keyId(), tokens);
        if (routed != null) {
            routed.tokens(tokens);
        }
        if (value.hasUsage()) {
            choice.promptTokens = value.getUsage().getPromptTokens();
        }
        if (value.getFinishReason() != FinishReason.FINISH_REASON_UNSPECIFIED) {
            choice.finish = value.getFinishReason();
        }
        if (!request.stream()) {
            choice.text.append(value.getText());
            choice.logprobs.addAll(value.getLogprobsList());
            return;
        }
        sendHeaders(200);
        if (!choice.started && request.chat()) {
            ObjectNode delta = JSON.createObjectNode().put("role", "assistant").put("content", "");
            write(chunk(choice, delta, null, null));
            choice.started = true;
        }
        if (!value.getText().isEmpty() || value.getLogprobsCount() > 0) {
            if (request.chat()) {
                write(chunk(choice, JSON.createObjectNode().put("content", value.getText()),
                        chatLogprobs(value.getLogprobsList()), null));
            } else {
                int offset = choice.text.length();
                choice.text.append(value.getText());
                write(chunk(choice, value.getText(), legacyLogprobs(value.getLogprobsList(), offset), null));
            }
        }
        if (choice.finish != FinishReason.FINISH_REASON_UNSPECIFIED) {
            write(chunk(choice, request.chat() ? JSON.createObjectNode() : "", null, finishReason(choice.finish)));
        }
    }

    private void onChoiceDone() {
        if (over || ++done < choices.size()) {
            return;
        }
        if (request.stream()) {
            sendHeaders(200);
            if (request.includeUsage()) {
                ObjectNode usage = base(request.chat() ? "chat.completion.chunk" : "text_completion");
                usage.putArray("choices");
                usage.set("usage", usage());
                write(usage);
            }
            response.write("data: [DONE]\n\n");
            response.end();
        } else {
            ObjectNode body = base(request.chat() ? "chat.completion" : "text_completion");
            ArrayNode out = body.putArray("choices");
            for (Choice choice : choices) {
                ObjectNode c = out.addObject().put("index", choice.index);
                if (request.chat()) {
                    c.putObject("message").put("role", "assistant").put("content", choice.text.toString())
                            .putNull("refusal");
                    c.set("logprobs", chatLogprobs(choice.logprobs));
                } else {
                    c.put("text", choice.text.toString());
                    c.set("logprobs", legacyLogprobs(choice.logprobs, 0));
                }
                c.put("finish_reason", finishReason(choice.finish));
            }
            body.set("usage", usage());
            byte[] bytes = bytes(body);
            expoHeaders();
            response.setStatusCode(200).putHeader("content-type", "application/json").end(
                    io.vertx.core.buffer.Buffer.buffer(bytes));
        }
        finish("OK", false);
    }

    private void onFailure(Status status) {
        if (over) {
            return;
        }
        OpenAiError error = OpenAiError.fromGrpc(status);
        cancelAll("another choice of the completion failed");
        if (headersSent) {
            // Mid-stream the status is sent; the error goes as an event, as OpenAI's streams carry one.
            response.write("data: " + new String(bytes(error.json()), StandardCharsets.UTF_8) + "\n\n");
            response.write("data: [DONE]\n\n");
            response.end();
        } else {
            OpenAiRoutes.sendError(response, error);
        }
        finish(status.getCode().name(), true);
    }

    private void clientGone() {
        if (over) {
            return;
        }
        cancelAll("the HTTP client went away");
        finish("CANCELLED", false);
    }

    private void cancelAll(String why) {
        for (Choice choice : choices) {
            if (choice.call != null) {
                choice.call.cancel(why, null);
            }
        }
    }

    private void finish(String code, boolean error) {
        over = true;
        admission.release();
        metrics.call(caller.keyId(), "http", endpoint, code);
        if (routed != null) {
            routed.end(error);
        }
    }

    private void sendHeaders(int status) {
        if (headersSent) {
            return;
        }
        headersSent = true;
        expoHeaders();
        response.setStatusCode(status).setChunked(true).putHeader("content-type", "text/event-stream")
                .putHeader("cache-control", "no-cache");
    }

    private void expoHeaders() {
        if (routed != null) {
            response.putHeader("x-expo-split", routed.split()).putHeader("x-expo-arm", routed.arm().name());
        }
    }

    private ObjectNode base(String object) {
        ObjectNode node = JSON.createObjectNode().put("id", id).put("object", object).put("created", created)
                .put("model", request.model());
        node.putNull("system_fingerprint");
        if (routed != null) {
            node.putObject("expo").put("split", routed.split()).put("arm", routed.arm().name())
                    .put("model", routed.arm().model());
        }
        return node;
    }

    private ObjectNode chunk(Choice choice, Object delta, ObjectNode logprobs, String finish) {
        ObjectNode node = base(request.chat() ? "chat.completion.chunk" : "text_completion");
        ObjectNode c = node.putArray("choices").addObject().put("index", choice.index);
        if (delta instanceof ObjectNode d) {
            c.set("delta", d);
        } else {
            c.put("text", (String) delta);
        }
        c.set("logprobs", logprobs);
        c.put("finish_reason", finish);
        if (request.includeUsage()) {
            node.putNull("usage");
        }
        return node;
    }

    private ObjectNode usage() {
        int prompt = 0;
        int completion = 0;
        for (Choice choice : choices) {
            if (choice.index % request.n() == 0) {
                prompt += choice.promptTokens;       // a prompt counts once, however many choices it has
            }
            completion += choice.generatedTokens;
        }
        return JSON.createObjectNode().put("prompt_tokens", prompt).put("completion_tokens", completion)
                .put("total_tokens", prompt + completion);
    }

    private ObjectNode chatLogprobs(List<GeneratedTokenLogprobs> logprobs) {
        if (!request.logprobs()) {
            return null;
        }
        ObjectNode node = JSON.createObjectNode();
        ArrayNode content = node.putArray("content");
        for (GeneratedTokenLogprobs lp : logprobs) {
            ObjectNode entry = tokenEntry(lp.getToken(), lp.getLogprob());
            ArrayNode top = entry.putArray("top_logprobs");
            for (TokenLogprob alternative : lp.getTopList()) {
                top.add(tokenEntry(alternative.getToken(), alternative.getLogprob()));
            }
            content.add(entry);
        }
        return node;
    }

    private static ObjectNode tokenEntry(String token, float logprob) {
        ObjectNode entry = JSON.createObjectNode().put("token", token).put("logprob", logprob);
        ArrayNode bytes = entry.putArray("bytes");
        for (byte b : token.getBytes(StandardCharsets.UTF_8)) {
            bytes.add(b & 0xff);
        }
        return entry;
    }

    /** The legacy completions API's logprobs: parallel lists, alternatives as token -> logprob maps. */
    private ObjectNode legacyLogprobs(List<GeneratedTokenLogprobs> logprobs, int offset) {
        if (!request.logprobs()) {
            return null;
        }
        ObjectNode node = JSON.createObjectNode();
        ArrayNode tokens = node.putArray("tokens");
        ArrayNode tokenLogprobs = node.putArray("token_logprobs");
        ArrayNode top = node.putArray("top_logprobs");
        ArrayNode offsets = node.putArray("text_offset");
        for (GeneratedTokenLogprobs lp : logprobs) {
            tokens.add(lp.getToken());
            tokenLogprobs.add(lp.getLogprob());
            ObjectNode alternatives = top.addObject();
            for (TokenLogprob alternative : lp.getTopList()) {
                alternatives.put(alternative.getToken(), alternative.getLogprob());
            }
            offsets.add(offset);
            offset += lp.getToken().length();
        }
        return node;
    }

    private static String finishReason(FinishReason reason) {
        return switch (reason) {
            case FINISH_REASON_LENGTH -> "length";
            case FINISH_REASON_STOP -> "stop";
            default -> null;
        };
    }

    private void write(ObjectNode chunk) {
        response.write("data: " + new String(bytes(chunk), StandardCharsets.UTF_8) + "\n\n");
    }

    private static byte[] bytes(ObjectNode node) {
        try {
            return JSON.writeValueAsBytes(node);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }
}

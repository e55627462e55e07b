package dev.expo.gateway.openai;

import com.fasterxml.jackson.databind.JsonNode;
import com.google.protobuf.ByteString;
import dev.expo.api.v1.ChatMessage;
import dev.expo.api.v1.ChatMessages;
import dev.expo.api.v1.GenerateRequest;
import dev.expo.api.v1.SamplingParams;
import dev.expo.api.v1.TokenIds;

import java.util.ArrayList;
import java.util.Base64;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * An OpenAI chat or text completion request read into what the inference service takes: one GenerateRequest per
 * choice ({@code n}). OpenAI's names where OpenAI has them; vLLM's for the samplers it adds ({@code top_k},
 * {@code min_p}, {@code repetition_penalty}); expo's own under {@code expo}: {@code {"adapter", "adapter_scale"}}.
 * What this API cannot do (tools, JSON mode, logit bias...) is refused by name, never ignored.
 */
record OpenAiRequest(boolean chat, String model, List<GenerateRequest> choices, int n, boolean stream,
                     boolean includeUsage, boolean logprobs, int topLogprobs, String user, boolean adapterGiven) {

    static final int MAX_N = 16;
    static final int MAX_TOP_LOGPROBS = 20;
    private static final Set<String> CHAT_FIELDS = Set.of("model", "messages", "stream", "stream_options",
            "temperature", "top_p", "max_tokens", "max_completion_tokens", "stop", "seed", "presence_penalty",
            "frequency_penalty", "logprobs", "top_logprobs", "n", "user", "top_k", "min_p", "repetition_penalty",
            "ignore_eos", "expo", "response_format", "tools", "tool_choice", "parallel_tool_calls", "logit_bias", "store",
            "metadata", "service_tier", "modalities", "reasoning_effort");
    private static final Set<String> COMPLETION_FIELDS = Set.of("model", "prompt", "stream", "stream_options",
            "temperature", "top_p", "max_tokens", "stop", "seed", "presence_penalty", "frequency_penalty",
            "logprobs", "n", "user", "top_k", "min_p", "repetition_penalty", "ignore_eos", "expo", "echo", "suffix", "best_of",
            "logit_bias");

    static OpenAiRequest chat(JsonNode body) {
        return read(body, true);
    }

    static OpenAiRequest completion(JsonNode body) {
        return read(body, false);
    }

    private static OpenAiRequest read(JsonNode body, boolean chat) {
        if (body == null || !body.isObject()) {
            throw OpenAiError.invalid(null, "the body must be a JSON object");
        }
        for (Iterator<String> names = body.fieldNames(); names.hasNext(); ) {
            String name = names.next();
            if (!(chat ? CHAT_FIELDS : COMPLETION_FIELDS).contains(name)) {
                throw OpenAiError.invalid(name, "unknown parameter " + name);
            }
        }
        refuseUnless(body, "tools", JsonNode::isEmpty, "tools (function calling) are not supported");
        refuseUnless(body, "tool_choice", n -> n.asText().equals("none"), "tool_choice is not supported");
        refuseUnless(body, "logit_bias", JsonNode::isEmpty, "logit_bias is not supported");
        refuseUnless(body, "response_format", n -> n.path("type").asText().equals("text"),
                "response_format other than {\"type\": \"text\"} is not supported");
        refuseUnless(body, "echo", n -> !n.asBoolean(), "echo is not supported");
        refuseUnless(body, "suffix", n -> n.asText().isEmpty(), "suffix is not supported");
        refuseUnless(body, "best_of", n -> n.asInt() <= 1, "best_of above 1 is not supported");
        refuseUnless(body, "modalities", n -> n.size() == 1 && n.get(0).asText().equals("text"),
                "only text output is supported");

        String model = text(body, "model", true);
        boolean stream = bool(body, "stream", false);
        boolean includeUsage = stream && body.path("stream_options").path("include_usage").asBoolean(false);
        int n = integer(body, "n", 1, 1, MAX_N);

        boolean logprobs;
        int topLogprobs;
        if (chat) {
            logprobs = bool(body, "logprobs", false);
            topLogprobs = integer(body, "top_logprobs", 0, 0, MAX_TOP_LOGPROBS);
            if (topLogprobs > 0 && !logprobs) {
                throw OpenAiError.invalid("top_logprobs", "top_logprobs needs logprobs: true");
            }
        } else {
            // The legacy API's logprobs is the number of alternatives (0 = the chosen tokens' only).
            logprobs = body.hasNonNull("logprobs");
            topLogprobs = integer(body, "logprobs", 0, 0, 5);
        }

        SamplingParams.Builder sampling = SamplingParams.newBuilder();
        if (body.hasNonNull("temperature")) {
            sampling.setTemperature((float) number(body, "temperature", 0, 2));
        }
        if (body.hasNonNull("top_p")) {
            sampling.setTopP((float) number(body, "top_p", 0, 1));
        }
        if (body.hasNonNull("presence_penalty")) {
            sampling.setPresencePenalty((float) number(body, "presence_penalty", -2, 2));
        }
        if (body.hasNonNull("frequency_penalty")) {
            sampling.setFrequencyPenalty((float) number(body, "frequency_penalty", -2, 2));
        }
        if (body.hasNonNull("top_k")) {
            int k = integer(body, "top_k", 0, -1, Integer.MAX_VALUE);
            sampling.setTopK(Math.max(0, k));     // vLLM's -1 (and 0) = off
        }
        if (body.hasNonNull("min_p")) {
            sampling.setMinP((float) number(body, "min_p", 0, 1));
        }
        if (body.hasNonNull("repetition_penalty")) {
            double penalty = number(body, "repetition_penalty", 0, Double.MAX_VALUE);
            if (penalty <= 0) {
                throw OpenAiError.invalid("repetition_penalty", "repetition_penalty must be > 0");
            }
            sampling.setRepetitionPenalty((float) penalty);
        }
        sampling.setIgnoreEos(bool(body, "ignore_eos", false));     // vLLM's: benchmarks run to max_tokens
        String maxField = chat && body.hasNonNull("max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
        if (body.hasNonNull(maxField)) {
            sampling.setMaxNewTokens(integer(body, maxField, 0, 1, Integer.MAX_VALUE));
        }
        JsonNode stop = body.path("stop");
        if (stop.isTextual()) {
            sampling.addStop(stop.asText());
        } else if (stop.isArray()) {
            if (stop.size() > 16) {
                throw OpenAiError.invalid("stop", "at most 16 stop sequences");
            }
            for (JsonNode s : stop) {
                if (!s.isTextual() || s.asText().isEmpty()) {
                    throw OpenAiError.invalid("stop", "stop must be a non-empty string or an array of them");
                }
                sampling.addStop(s.asText());
            }
        } else if (!stop.isMissingNode() && !stop.isNull()) {
            throw OpenAiError.invalid("stop", "stop must be a string or an array of strings");
        }
        Long seed = null;
        if (body.hasNonNull("seed")) {
            if (!body.get("seed").canConvertToLong()) {
                throw OpenAiError.invalid("seed", "seed must be an integer");
            }
            seed = body.get("seed").asLong();
        }

        GenerateRequest.Builder base = GenerateRequest.newBuilder().setModel(model)
                .setLogprobs(logprobs).setTopLogprobs(topLogprobs);
        JsonNode expo = body.path("expo");
        boolean adapterGiven = false;
        if (!expo.isMissingNode() && !expo.isNull()) {
            if (!expo.isObject()) {
                throw OpenAiError.invalid("expo", "expo must be an object: {\"adapter\": ..., \"adapter_scale\": ...}");
            }
            for (Iterator<Map.Entry<String, JsonNode>> it = expo.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> field = it.next();
                switch (field.getKey()) {
                    case "adapter" -> {
                        base.setAdapter(field.getValue().asText());
                        adapterGiven = true;
                    }
                    case "adapter_scale" -> {
                        if (!field.getValue().isNumber()) {
                            throw OpenAiError.invalid("expo.adapter_scale", "expo.adapter_scale must be a number");
                        }
                        base.setAdapterScale(field.getValue().asDouble());
                        adapterGiven = true;
                    }
                    default -> throw OpenAiError.invalid("expo." + field.getKey(), "unknown parameter expo."
                            + field.getKey() + " (expo takes adapter and adapter_scale)");
                }
            }
        }
        List<GenerateRequest> prompts = new ArrayList<>();
        if (chat) {
            readMessages(body.path("messages"), base);
            prompts.add(base.build());
        } else {
            JsonNode prompt = body.path("prompt");
            if (prompt.isTextual()) {
                prompts.add(base.clone().setText(prompt.asText()).build());
            } else if (prompt.isArray() && !prompt.isEmpty() && prompt.get(0).isInt()) {
                prompts.add(base.clone().setTokenIds(tokenIds(prompt)).build());
            } else if (prompt.isArray() && !prompt.isEmpty()) {
                for (JsonNode p : prompt) {
                    if (p.isTextual()) {
                        prompts.add(base.clone().setText(p.asText()).build());
                    } else if (p.isArray() && !p.isEmpty()) {
                        prompts.add(base.clone().setTokenIds(tokenIds(p)).build());
                    } else {
                        throw OpenAiError.invalid("prompt", "prompt must be a string, an array of strings, or "
                                + "token ids");
                    }
                }
            } else {
                throw OpenAiError.invalid("prompt", "prompt is required: a string, an array of strings, or token "
                        + "ids");
            }
            if (prompts.size() * n > MAX_N) {
                throw OpenAiError.invalid("n", "at most " + MAX_N + " choices in all (prompts times n)");
            }
        }
        List<GenerateRequest> choices = new ArrayList<>();
        for (GenerateRequest prompt : prompts) {
            for (int i = 0; i < n; i++) {
                SamplingParams.Builder choice = sampling.clone();
                if (seed != null) {
                    choice.setSeed(seed + choices.size());   // n seeded choices differ, yet each is reproducible
                }
                choices.add(prompt.toBuilder().setSampling(choice).build());
            }
        }
        String user = body.hasNonNull("user") ? body.get("user").asText() : null;
        return new OpenAiRequest(chat, model, choices, n, stream, includeUsage, logprobs, topLogprobs, user,
                adapterGiven);
    }

    private static void readMessages(JsonNode messages, GenerateRequest.Builder request) {
        if (!messages.isArray() || messages.isEmpty()) {
            throw OpenAiError.invalid("messages", "messages must be a non-empty array");
        }
        ChatMessages.Builder chat = ChatMessages.newBuilder();
        boolean image = false;
        for (int i = 0; i < messages.size(); i++) {
            JsonNode message = messages.get(i);
            String param = "messages[" + i + "]";
            String role = message.path("role").asText("");
            role = switch (role) {
                case "system", "developer" -> "system";
                case "user", "assistant" -> role;
                default -> throw OpenAiError.invalid(param + ".role", "role must be system, developer, user or "
                        + "assistant" + (role.equals("tool") ? " (tools are not supported)" : ""));
            };
            JsonNode content = message.path("content");
            StringBuilder text = new StringBuilder();
            if (content.isTextual()) {
                text.append(content.asText());
            } else if (content.isArray()) {
                for (int j = 0; j < content.size(); j++) {
                    JsonNode part = content.get(j);
                    String partParam = param + ".content[" + j + "]";
                    switch (part.path("type").asText("")) {
                        case "text" -> {
                            if (!text.isEmpty()) {
                                text.append('\n');
                            }
                            text.append(part.path("text").asText(""));
                        }
                        case "image_url" -> {
                            if (image) {
                                throw OpenAiError.invalid(partParam, "one image per conversation: the model takes "
                                        + "one image as its prefix");
                            }
                            image = true;
                            request.setImage(ByteString.copyFrom(dataUri(part.path("image_url").path("url").asText(""),
                                    partParam + ".image_url.url")));
                        }
                        default -> throw OpenAiError.invalid(partParam + ".type", "content parts are text or "
                                + "image_url");
                    }
                }
            } else if (!(content.isNull() && role.equals("assistant"))) {
                throw OpenAiError.invalid(param + ".content", "content must be a string or an array of parts");
            }
            chat.addMessages(ChatMessage.newBuilder().setRole(role).setContent(text.toString()));
        }
        request.setChat(chat);
    }

    /** The image of a {@code data:image/...;base64,...} URI; the gateway downloads nothing. */
    private static byte[] dataUri(String url, String param) {
        if (!url.startsWith("data:")) {
            throw OpenAiError.invalid(param, "images must be data URIs (data:image/png;base64,...): the gateway "
                    + "fetches no URLs");
        }
        int comma = url.indexOf(',');
        if (comma < 0 || !url.substring(0, comma).endsWith(";base64")) {
            throw OpenAiError.invalid(param, "the data URI must be base64 (data:image/png;base64,...)");
        }
        try {
            return Base64.getMimeDecoder().decode(url.substring(comma + 1));
        } catch (IllegalArgumentException e) {
            throw OpenAiError.invalid(param, "the data URI's base64 is malformed: " + e.getMessage());
        }
    }

    private static TokenIds tokenIds(JsonNode array) {
        TokenIds.Builder ids = TokenIds.newBuilder();
        for (JsonNode id : array) {
            if (!id.isInt()) {
                throw OpenAiError.invalid("prompt", "token ids must be integers");
            }
            ids.addIds(id.asInt());
        }
        return ids.build();
    }

    private static void refuseUnless(JsonNode body, String field, java.util.function.Predicate<JsonNode> allowed,
                                     String message) {
        JsonNode value = body.get(field);
        if (value != null && !value.isNull() && !allowed.test(value)) {
            throw OpenAiError.invalid(field, message);
        }
    }

    private static String text(JsonNode body, String field, boolean required) {
        JsonNode value = body.get(field);
        if (value == null || value.isNull()) {
            if (required) {
                throw OpenAiError.invalid(field, field + " is required");
            }
            return null;
        }
        if (!value.isTextual() || value.asText().isBlank()) {
            throw OpenAiError.invalid(field, field + " must be a non-empty string");
        }
        return value.asText();
    }

    private static boolean bool(JsonNode body, String field, boolean otherwise) {
        JsonNode value = body.get(field);
        if (value == null || value.isNull()) {
            return otherwise;
        }
        if (!value.isBoolean()) {
            throw OpenAiError.invalid(field, field + " must be true or false");
        }
        return value.asBoolean();
    }

    private static int integer(JsonNode body, String field, int otherwise, int min, int max) {
        JsonNode value = body.get(field);
        if (value == null || value.isNull()) {
            return otherwise;
        }
        if (!value.canConvertToInt() || !value.isIntegralNumber()) {
            throw OpenAiError.invalid(field, field + " must be an integer");
        }
        int v = value.asInt();
        if (v < min || v > max) {
            throw OpenAiError.invalid(field, field + " must be between " + min + " and " + max + ", not " + v);
        }
        return v;
    }

    private static double number(JsonNode body, String field, double min, double max) {
        JsonNode value = body.get(field);
        if (!value.isNumber()) {
            throw OpenAiError.invalid(field, field + " must be a number");
        }
        double v = value.asDouble();
        if (!(v >= min && v <= max)) {
            throw OpenAiError.invalid(field, field + " must be between " + min + " and " + max + ", not " + v);
        }
        return v;
    }
}

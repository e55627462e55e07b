package dev.expo.inference.engine;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.expo.common.ExpoException;
import dev.expo.modeling.sampling.SamplingParams;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * A model's own generation settings, from its generation_config.json: the end-of-sequence ids, and the sampling
 * values its authors recommend, used when a request leaves them unset (before the server's defaults), as vLLM does.
 * Only values the file sets count (transformers' class defaults, such as top_k 50, do not); {@code "do_sample":
 * false} makes greedy decoding the default, as it is in transformers. Null = not set.
 */
public record GenerationDefaults(Set<Integer> eosTokenIds, Float temperature, Float topP, Integer topK,
                                 Float repetitionPenalty, Integer noRepeatNgramSize, Integer maxNewTokens) {

    public static final String FILE_NAME = "generation_config.json";
    public static final GenerationDefaults NONE = new GenerationDefaults(Set.of(), null, null, null, null, null, null);
    private static final ObjectMapper JSON = new ObjectMapper();

    public GenerationDefaults {
        eosTokenIds = Set.copyOf(eosTokenIds);
    }

    /** Reads a model folder's generation_config.json; none at all is {@link #NONE}. */
    public static GenerationDefaults read(Path modelDir) {
        Path file = modelDir.resolve(FILE_NAME);
        if (!Files.isRegularFile(file)) {
            return NONE;
        }
        JsonNode json;
        try {
            json = JSON.readTree(Files.readString(file));
        } catch (IOException e) {
            throw ExpoException.invalidArgument(file + " is not valid JSON: " + e.getMessage());
        }
        if (json == null || !json.isObject()) {
            throw ExpoException.invalidArgument(file + " must hold a JSON object");
        }
        Set<Integer> eos = new LinkedHashSet<>();
        JsonNode eosNode = json.path("eos_token_id");
        for (JsonNode id : eosNode.isArray() ? eosNode : List.of(eosNode)) {
            if (id.canConvertToInt()) {
                eos.add(id.asInt());
            }
        }
        Float temperature = floatOf(json, "temperature");
        if (json.path("do_sample").isBoolean() && !json.get("do_sample").asBoolean()) {
            temperature = 0f;
        }
        GenerationDefaults defaults = new GenerationDefaults(eos, temperature, floatOf(json, "top_p"),
                intOf(json, "top_k"), floatOf(json, "repetition_penalty"), intOf(json, "no_repeat_ngram_size"),
                intOf(json, "max_new_tokens"));
        try {
            defaults.over(SamplingParams.greedy(1));   // the same checks as a request's values
        } catch (ExpoException e) {
            throw ExpoException.invalidArgument(file + ": " + e.getMessage());
        }
        return defaults;
    }

    /** These values where set, else {@code fallback}'s. */
    public SamplingParams over(SamplingParams fallback) {
        return new SamplingParams(
                temperature != null ? temperature : fallback.temperature(),
                topP != null ? topP : fallback.topP(),
                topK != null ? topK : fallback.topK(),
                repetitionPenalty != null ? repetitionPenalty : fallback.repetitionPenalty(),
                fallback.frequencyPenalty(), fallback.presencePenalty(),
                noRepeatNgramSize != null ? noRepeatNgramSize : fallback.noRepeatNgramSize(),
                fallback.stop(), fallback.stopTokenIds(),
                maxNewTokens != null ? maxNewTokens : fallback.maxNewTokens(),
                fallback.seed(), fallback.ignoreEos(), fallback.logprobs(), fallback.topLogprobs());
    }

    private static Number number(JsonNode json, String field) {
        JsonNode node = json.get(field);
        return node != null && node.isNumber() ? node.numberValue() : null;
    }

    private static Float floatOf(JsonNode json, String field) {
        Number n = number(json, field);
        return n == null ? null : n.floatValue();
    }

    private static Integer intOf(JsonNode json, String field) {
        JsonNode node = json.get(field);
        return node != null && node.canConvertToInt() && node.isIntegralNumber() ? node.asInt() : null;
    }
}

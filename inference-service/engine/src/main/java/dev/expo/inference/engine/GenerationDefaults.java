package dev.expo.inference.engine;

import com.fasterxml.jackson.databind.JsonNode;
import dev.expo.checkpoint.JsonFiles;
import dev.expo.common.ExpoException;
import dev.expo.modeling.sampling.SamplingParams;

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
public record GenerationDefaults(Set<Integer> eosTokenIds, Float temperature, Float topP, Integer topK, Float minP,
                                 Float repetitionPenalty, Integer noRepeatNgramSize, Integer maxNewTokens) {

    public static final String FILE_NAME = "generation_config.json";
    public static final GenerationDefaults NONE = new GenerationDefaults(Set.of(), null, null, null, null, null, null,
            null);

    public GenerationDefaults {
        eosTokenIds = Set.copyOf(eosTokenIds);
    }

    /** Reads a model folder's generation_config.json; none at all is {@link #NONE}. */
    public static GenerationDefaults read(Path modelDir) {
        Path file = modelDir.resolve(FILE_NAME);
        if (!Files.isRegularFile(file)) {
            return NONE;
        }
        JsonNode json = JsonFiles.readObject(file);
        Set<Integer> eos = new LinkedHashSet<>();
        JsonNode eosNode = json.path("eos_token_id");
        for (JsonNode id : eosNode.isArray() ? eosNode : List.of(eosNode)) {
            if (id.canConvertToInt()) {
                eos.add(id.asInt());
            }
        }
        Float temperature = floatOf(file, json, "temperature");
        if (json.path("do_sample").isBoolean() && !json.get("do_sample").asBoolean()) {
            temperature = 0f;
        }
        GenerationDefaults defaults = new GenerationDefaults(eos, temperature, floatOf(file, json, "top_p"),
                intOf(file, json, "top_k"), floatOf(file, json, "min_p"), floatOf(file, json, "repetition_penalty"),
                intOf(file, json, "no_repeat_ngram_size"), intOf(file, json, "max_new_tokens"));
        try {
            defaults.over(SamplingParams.greedy(1));   // the same checks as a request's values
        } catch (ExpoException e) {
            throw ExpoException.invalidArgument(file + ": " + e.getMessage());
        }
        return defaults;
    }

    /** These values where set, else {@code fallback}'s. */
    public SamplingParams over(SamplingParams fallback) {
        SamplingParams.Builder merged = fallback.toBuilder();
        if (temperature != null) {
            merged.temperature(temperature);
        }
        if (topP != null) {
            merged.topP(topP);
        }
        if (topK != null) {
            merged.topK(topK);
        }
        if (minP != null) {
            merged.minP(minP);
        }
        if (repetitionPenalty != null) {
            merged.repetitionPenalty(repetitionPenalty);
        }
        if (noRepeatNgramSize != null) {
            merged.noRepeatNgramSize(noRepeatNgramSize);
        }
        if (maxNewTokens != null) {
            merged.maxNewTokens(maxNewTokens);
        }
        return merged.build();
    }

    /** A field's number; absent or null is unset, anything else (a string, a boolean) is refused by name. */
    private static Number number(Path file, JsonNode json, String field) {
        JsonNode node = json.get(field);
        if (node == null || node.isNull()) {
            return null;
        }
        if (!node.isNumber()) {
            throw ExpoException.invalidArgument(file + ": " + field + " must be a number, not " + node);
        }
        return node.numberValue();
    }

    private static Float floatOf(Path file, JsonNode json, String field) {
        Number n = number(file, json, field);
        return n == null ? null : n.floatValue();
    }

    private static Integer intOf(Path file, JsonNode json, String field) {
        Number n = number(file, json, field);
        if (n == null) {
            return null;
        }
        if (!json.get(field).canConvertToExactIntegral() || !json.get(field).canConvertToInt()) {
            throw ExpoException.invalidArgument(file + ": " + field + " must be an integer, not " + json.get(field));
        }
        return json.get(field).asInt();
    }
}

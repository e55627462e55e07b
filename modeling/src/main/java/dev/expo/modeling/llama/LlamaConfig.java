package dev.expo.modeling.llama;

import com.fasterxml.jackson.databind.JsonNode;
import dev.expo.checkpoint.HfConfig;
import dev.expo.common.ExpoException;

import java.util.ArrayList;
import java.util.List;

/**
 * The decoder's configuration, read from a Hugging Face config.json: LLaMA and Mistral (grouped-query attention,
 * optional sliding window), and LLaMA-style sequence classifiers (reward models).
 *
 * @param slidingWindow 0 = none; otherwise a query at position i attends keys i - W < j <= i
 * @param ropeScaling   how the rotary frequencies are scaled ({@link RopeScaling#NONE} when not)
 */
public record LlamaConfig(String architecture, int vocabSize, int hiddenSize, int intermediateSize, int numLayers,
                          int numHeads, int numKvHeads, int headDim, double ropeTheta, double rmsNormEps,
                          int maxPositions, boolean tieEmbeddings, int slidingWindow, int bosTokenId,
                          List<Integer> eosTokenIds, int numLabels, int padTokenId, RopeScaling ropeScaling) {

    public static LlamaConfig from(HfConfig config) {
        String architecture = config.architectures().isEmpty() ? "" : config.architectures().getFirst();
        String type = config.modelType() == null ? "" : config.modelType();
        if (!(type.equals("llama") || type.equals("mistral"))) {
            throw ExpoException.failedPrecondition(config.file() + ": model_type \"" + type + "\" is not a decoder this "
                    + "runtime supports (llama, mistral)");
        }
        JsonNode json = config.json();
        int hidden = integer(json, "hidden_size", -1);
        int heads = integer(json, "num_attention_heads", -1);
        if (hidden <= 0 || heads <= 0) {
            throw ExpoException.invalidArgument(config.file() + " needs hidden_size and num_attention_heads");
        }
        int headDim = integer(json, "head_dim", hidden / heads);
        // What the decoders do not compute is refused, not approximated.
        String activation = json.has("hidden_act") ? json.get("hidden_act").asText() : "silu";
        if (!activation.equals("silu") && !activation.equals("swish")) {
            throw ExpoException.failedPrecondition(config.file() + ": hidden_act \"" + activation + "\" is not "
                    + "supported (silu)");
        }
        for (String bias : List.of("attention_bias", "mlp_bias")) {
            if (json.has(bias) && json.get(bias).asBoolean(false)) {
                throw ExpoException.failedPrecondition(config.file() + ": " + bias + " is not supported");
            }
        }
        RopeScaling ropeScaling = RopeScaling.from(json.get("rope_scaling"), config.file().toString());
        JsonNode window = json.get("sliding_window");
        boolean windowed = type.equals("mistral") && window != null && window.canConvertToInt()
                && !(json.has("use_sliding_window") && !json.get("use_sliding_window").asBoolean(true));
        List<Integer> eos = new ArrayList<>();
        JsonNode eosNode = json.get("eos_token_id");
        if (eosNode != null && eosNode.isArray()) {
            eosNode.forEach(n -> eos.add(n.asInt()));
        } else if (eosNode != null && eosNode.canConvertToInt()) {
            eos.add(eosNode.asInt());
        }
        return new LlamaConfig(architecture,
                integer(json, "vocab_size", -1), hidden, integer(json, "intermediate_size", -1),
                integer(json, "num_hidden_layers", -1), heads, integer(json, "num_key_value_heads", heads), headDim,
                json.has("rope_theta") ? json.get("rope_theta").asDouble() : 10000.0,
                json.has("rms_norm_eps") ? json.get("rms_norm_eps").asDouble() : 1e-6,
                integer(json, "max_position_embeddings", 2048),
                json.has("tie_word_embeddings") && json.get("tie_word_embeddings").asBoolean(),
                windowed ? window.asInt() : 0,
                integer(json, "bos_token_id", 1), List.copyOf(eos),
                integer(json, "num_labels", 1), integer(json, "pad_token_id", -1), ropeScaling);
    }

    public boolean isSequenceClassifier() {
        return architecture.endsWith("ForSequenceClassification");
    }

    /** Query heads per key/value head. */
    public int groupSize() {
        return numHeads / numKvHeads;
    }

    private static int integer(JsonNode json, String key, int fallback) {
        JsonNode node = json.get(key);
        return node == null || !node.canConvertToInt() ? fallback : node.asInt();
    }
}

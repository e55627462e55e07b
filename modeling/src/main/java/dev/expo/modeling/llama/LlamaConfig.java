package dev.expo.modeling.llama;

import com.fasterxml.jackson.databind.JsonNode;
import dev.expo.checkpoint.Checkpoint;
import dev.expo.checkpoint.HfConfig;
import dev.expo.common.ExpoException;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

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
        int kvHeads = integer(json, "num_key_value_heads", heads);
        for (String field : List.of("vocab_size", "intermediate_size", "num_hidden_layers")) {
            if (integer(json, field, -1) <= 0) {
                throw ExpoException.invalidArgument(config.file() + " needs " + field + " (a positive integer)");
            }
        }
        if (kvHeads <= 0 || heads % kvHeads != 0 || headDim <= 0) {
            throw ExpoException.invalidArgument(config.file() + ": num_attention_heads " + heads
                    + " must be a multiple of num_key_value_heads " + kvHeads + ", with a positive head_dim");
        }
        return new LlamaConfig(architecture,
                integer(json, "vocab_size", -1), hidden, integer(json, "intermediate_size", -1),
                integer(json, "num_hidden_layers", -1), heads, kvHeads, headDim,
                json.has("rope_theta") ? json.get("rope_theta").asDouble() : 10000.0,
                json.has("rms_norm_eps") ? json.get("rms_norm_eps").asDouble() : 1e-6,
                integer(json, "max_position_embeddings", 2048),
                json.has("tie_word_embeddings") && json.get("tie_word_embeddings").asBoolean(),
                windowed ? window.asInt() : 0,
                integer(json, "bos_token_id", 1), List.copyOf(eos),
                integer(json, "num_labels", 1), integer(json, "pad_token_id", -1), ropeScaling);
    }

    /**
     * The shape of every tensor such a checkpoint holds, as transformers builds the model from config.json
     * (projections are [out, in]); the output head is lm_head.weight, or score.weight for a classifier.
     */
    public Map<String, long[]> tensorShapes() {
        Map<String, long[]> shapes = new LinkedHashMap<>();
        long attention = (long) numHeads * headDim;
        long keyValue = (long) numKvHeads * headDim;
        shapes.put("model.embed_tokens.weight", new long[] {vocabSize, hiddenSize});
        for (int i = 0; i < numLayers; i++) {
            String p = "model.layers." + i + ".";
            shapes.put(p + "input_layernorm.weight", new long[] {hiddenSize});
            shapes.put(p + "self_attn.q_proj.weight", new long[] {attention, hiddenSize});
            shapes.put(p + "self_attn.k_proj.weight", new long[] {keyValue, hiddenSize});
            shapes.put(p + "self_attn.v_proj.weight", new long[] {keyValue, hiddenSize});
            shapes.put(p + "self_attn.o_proj.weight", new long[] {hiddenSize, attention});
            shapes.put(p + "post_attention_layernorm.weight", new long[] {hiddenSize});
            shapes.put(p + "mlp.gate_proj.weight", new long[] {intermediateSize, hiddenSize});
            shapes.put(p + "mlp.up_proj.weight", new long[] {intermediateSize, hiddenSize});
            shapes.put(p + "mlp.down_proj.weight", new long[] {hiddenSize, intermediateSize});
        }
        shapes.put("model.norm.weight", new long[] {hiddenSize});
        if (isSequenceClassifier()) {
            shapes.put("score.weight", new long[] {numLabels, hiddenSize});
        } else {
            shapes.put("lm_head.weight", new long[] {vocabSize, hiddenSize});
        }
        return shapes;
    }

    /**
     * Refuses a checkpoint whose tensors do not have the shapes its config.json gives them, or are not floats: the
     * decoders size their buffers from the config and would otherwise compute garbage or fail mid-request.
     */
    public void requireWeights(Checkpoint weights) {
        weights.requireWeights(tensorShapes(), "config.json (hidden_size " + hiddenSize + ", intermediate_size "
                + intermediateSize + ", " + numHeads + " heads, " + numKvHeads + " key/value heads of " + headDim
                + ", vocab_size " + vocabSize + ")");
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

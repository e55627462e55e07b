package dev.expo.modeling.clip;

import com.fasterxml.jackson.databind.JsonNode;
import dev.expo.checkpoint.Checkpoint;
import dev.expo.checkpoint.HfConfig;
import dev.expo.common.ExpoException;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A CLIP vision tower's configuration: from a CLIPVisionModel's config.json, or the vision_config of a full CLIP
 * model (openai/clip-vit-base-patch16), whose vision weights have the same names.
 */
public record ClipVisionConfig(int hiddenSize, int intermediateSize, int numLayers, int numHeads, int imageSize,
                               int patchSize, int numChannels, double layerNormEps, String hiddenAct) {

    public static ClipVisionConfig from(HfConfig config) {
        JsonNode json = config.json();
        String type = config.modelType() == null ? "" : config.modelType();
        if (type.equals("clip") && json.has("vision_config")) {
            json = json.get("vision_config");
        } else if (!type.equals("clip_vision_model")) {
            throw ExpoException.failedPrecondition(config.file() + ": model_type \"" + type + "\" is not a CLIP vision "
                    + "tower (clip_vision_model, or clip with a vision_config)");
        }
        ClipVisionConfig vision = new ClipVisionConfig(json.path("hidden_size").asInt(768),
                json.path("intermediate_size").asInt(3072), json.path("num_hidden_layers").asInt(12),
                json.path("num_attention_heads").asInt(12), json.path("image_size").asInt(224),
                json.path("patch_size").asInt(32), json.path("num_channels").asInt(3),
                json.path("layer_norm_eps").asDouble(1e-5), json.path("hidden_act").asText("quick_gelu"));
        if (Math.min(Math.min(vision.hiddenSize, vision.intermediateSize), Math.min(vision.numLayers, vision.numHeads))
                <= 0 || vision.patchSize <= 0 || vision.imageSize < vision.patchSize || vision.numChannels <= 0) {
            throw ExpoException.invalidArgument(config.file() + ": the vision config's sizes must be positive, with "
                    + "image_size at least patch_size");
        }
        if (vision.hiddenSize % vision.numHeads != 0) {
            // As transformers' CLIPAttention refuses it.
            throw ExpoException.invalidArgument(config.file() + ": hidden_size " + vision.hiddenSize
                    + " is not a multiple of num_attention_heads " + vision.numHeads);
        }
        return vision;
    }

    /** The shape of every tensor of the tower, as transformers' CLIPVisionModel builds it from this config. */
    public Map<String, long[]> tensorShapes() {
        Map<String, long[]> shapes = new LinkedHashMap<>();
        String p = "vision_model.";
        long[] vector = {hiddenSize};
        long[] square = {hiddenSize, hiddenSize};
        shapes.put(p + "embeddings.class_embedding", vector);
        shapes.put(p + "embeddings.patch_embedding.weight", new long[] {hiddenSize, numChannels, patchSize, patchSize});
        shapes.put(p + "embeddings.position_embedding.weight", new long[] {numPositions(), hiddenSize});
        shapes.put(p + "pre_layrnorm.weight", vector);
        shapes.put(p + "pre_layrnorm.bias", vector);
        for (int i = 0; i < numLayers; i++) {
            String l = p + "encoder.layers." + i + ".";
            for (String norm : List.of("layer_norm1", "layer_norm2")) {
                shapes.put(l + norm + ".weight", vector);
                shapes.put(l + norm + ".bias", vector);
            }
            for (String projection : List.of("q_proj", "k_proj", "v_proj", "out_proj")) {
                shapes.put(l + "self_attn." + projection + ".weight", square);
                shapes.put(l + "self_attn." + projection + ".bias", vector);
            }
            shapes.put(l + "mlp.fc1.weight", new long[] {intermediateSize, hiddenSize});
            shapes.put(l + "mlp.fc1.bias", new long[] {intermediateSize});
            shapes.put(l + "mlp.fc2.weight", new long[] {hiddenSize, intermediateSize});
            shapes.put(l + "mlp.fc2.bias", vector);
        }
        shapes.put(p + "post_layernorm.weight", vector);
        shapes.put(p + "post_layernorm.bias", vector);
        return shapes;
    }

    /** Refuses a checkpoint whose tensors do not have the shapes this config gives them (or are not floats). */
    public void requireWeights(Checkpoint weights) {
        weights.requireWeights(tensorShapes(), "config.json (hidden_size " + hiddenSize + ", intermediate_size "
                + intermediateSize + ", image_size " + imageSize + ", patch_size " + patchSize + ")");
    }

    public int patchesPerSide() {
        return imageSize / patchSize;
    }

    /** Patch tokens plus the class token. */
    public int numPositions() {
        return patchesPerSide() * patchesPerSide() + 1;
    }

    public int headDim() {
        return hiddenSize / numHeads;
    }
}

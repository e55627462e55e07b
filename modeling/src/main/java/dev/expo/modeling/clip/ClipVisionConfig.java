package dev.expo.modeling.clip;

import com.fasterxml.jackson.databind.JsonNode;
import dev.expo.checkpoint.HfConfig;
import dev.expo.common.ExpoException;

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
        return new ClipVisionConfig(json.path("hidden_size").asInt(768), json.path("intermediate_size").asInt(3072),
                json.path("num_hidden_layers").asInt(12), json.path("num_attention_heads").asInt(12),
                json.path("image_size").asInt(224), json.path("patch_size").asInt(32),
                json.path("num_channels").asInt(3), json.path("layer_norm_eps").asDouble(1e-5),
                json.path("hidden_act").asText("quick_gelu"));
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

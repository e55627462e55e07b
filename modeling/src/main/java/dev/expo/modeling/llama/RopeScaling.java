package dev.expo.modeling.llama;

import com.fasterxml.jackson.databind.JsonNode;
import dev.expo.common.ExpoException;

/**
 * A config.json's {@code rope_scaling}, as transformers' {@code modeling_rope_utils} applies it to the rotary
 * inverse frequencies (in float32, operation by operation): none ("default"), "linear" (every frequency divided by the
 * factor), "llama3" (Llama 3.1's: long wavelengths divided by the factor, short ones kept, a smooth blend between) and
 * "dynamic" (NTK scaling, which transformers applies only past the original context: within it, which is all this
 * runtime serves, it is the default). Other types are refused rather than silently computed wrong.
 */
public record RopeScaling(String type, float factor, float lowFreqFactor, float highFreqFactor,
                          int originalMaxPositions) {

    public static final RopeScaling NONE = new RopeScaling("default", 1f, 0f, 0f, 0);

    static RopeScaling from(JsonNode scaling, String file) {
        if (scaling == null || scaling.isNull()) {
            return NONE;
        }
        JsonNode typeNode = scaling.has("rope_type") ? scaling.get("rope_type") : scaling.get("type");
        String type = typeNode == null ? "default" : typeNode.asText();
        return switch (type) {
            case "default", "dynamic" -> NONE;
            case "linear" -> new RopeScaling(type, number(scaling, "factor", file), 0f, 0f, 0);
            case "llama3" -> new RopeScaling(type, number(scaling, "factor", file),
                    number(scaling, "low_freq_factor", file), number(scaling, "high_freq_factor", file),
                    (int) number(scaling, "original_max_position_embeddings", file));
            default -> throw ExpoException.failedPrecondition(file + ": rope_scaling type \"" + type + "\" is not "
                    + "supported (default, linear, dynamic, llama3)");
        };
    }

    private static float number(JsonNode scaling, String key, String file) {
        JsonNode node = scaling.get(key);
        if (node == null || !node.isNumber() || !(node.asDouble() > 0)) {
            throw ExpoException.invalidArgument(file + ": rope_scaling needs a positive " + key);
        }
        return (float) node.asDouble();
    }

    /** The unscaled inverse frequencies {@code 1 / theta^(2i / headDim)}, each rounded to float32 as transformers does. */
    public static float[] defaultInverseFrequencies(double theta, int headDim) {
        float[] inverse = new float[headDim / 2];
        for (int i = 0; i < inverse.length; i++) {
            float exponent = (float) (2 * i) / headDim;
            inverse[i] = 1f / (float) Math.pow((float) theta, exponent);
        }
        return inverse;
    }

    /** Scales inverse frequencies in place. */
    public float[] apply(float[] inverse) {
        switch (type) {
            case "linear" -> {
                for (int i = 0; i < inverse.length; i++) {
                    inverse[i] = inverse[i] / factor;
                }
            }
            case "llama3" -> {
                float lowFreqWavelength = (float) ((double) originalMaxPositions / lowFreqFactor);
                float highFreqWavelength = (float) ((double) originalMaxPositions / highFreqFactor);
                float blendSpan = (float) ((double) highFreqFactor - lowFreqFactor);
                for (int i = 0; i < inverse.length; i++) {
                    float wavelength = (float) (2 * Math.PI) / inverse[i];
                    float scaled = wavelength > lowFreqWavelength ? inverse[i] / factor : inverse[i];
                    if (!(wavelength < highFreqWavelength) && !(wavelength > lowFreqWavelength)) {
                        float smooth = ((float) originalMaxPositions / wavelength - lowFreqFactor) / blendSpan;
                        scaled = (1f - smooth) * scaled / factor + smooth * scaled;
                    }
                    inverse[i] = scaled;
                }
            }
            default -> {
            }
        }
        return inverse;
    }
}

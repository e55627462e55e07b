package dev.expo.inference.engine;

/**
 * Which model answers: a language model or a multimodal manifest, optionally a LoRA adapter on it, and the scale of
 * the adapter (the request's adapter, or else the manifest's own). Null adapter = none; null scale = 1.
 */
public record ModelRef(String model, String adapter, Double adapterScale) {

    public static ModelRef of(String model) {
        return new ModelRef(model, null, null);
    }
}

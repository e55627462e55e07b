package dev.expo.checkpoint.catalog;

/** What a model folder in the store holds. */
public enum ModelKind {
    /** A decoder-only causal language model (LlamaForCausalLM, MistralForCausalLM, ...). */
    LANGUAGE_MODEL,
    /** A reward model: a decoder with a one-label score head (LlamaForSequenceClassification, Mistral...). */
    REWARD_MODEL,
    /** A CLIP vision tower (CLIPVisionModel or the vision half of a CLIPModel). */
    VISION_TOWER,
    /** A linear projector from a vision tower's hidden size to a language model's. */
    PROJECTOR,
    /** A manifest ({@code expo-model.json}) naming a language model, a vision tower, a projector and an adapter. */
    MULTIMODAL,
    /** A PEFT LoRA adapter. */
    ADAPTER,
    /** A folder with weights whose kind the system does not know. */
    UNKNOWN
}

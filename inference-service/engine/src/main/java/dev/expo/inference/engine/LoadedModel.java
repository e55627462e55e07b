package dev.expo.inference.engine;

import dev.expo.modeling.Decoder;
import dev.expo.modeling.clip.ClipVisionModel;
import dev.expo.modeling.lora.LoraAdapter;
import dev.expo.modeling.multimodal.MultimodalModel;
import dev.expo.modeling.tokenizer.TextTokenizer;

import java.util.Set;

/** A model of the store, loaded: one record per kind. */
public sealed interface LoadedModel {

    String name();

    /** A causal language model with its tokenizer, the token ids that end a generation and its sampling defaults. */
    record Language(String name, Decoder decoder, TextTokenizer tokenizer, Set<Integer> eosTokenIds,
                    GenerationDefaults generation) implements LoadedModel {
    }

    /** A reward model (a decoder with a score head) with its tokenizer and the pad id HF's pooling looks for. */
    record Reward(String name, Decoder decoder, TextTokenizer tokenizer, int padTokenId) implements LoadedModel {
    }

    record Vision(String name, ClipVisionModel tower) implements LoadedModel {
    }

    /** A manifest's parts put together; the language part (its name, tokenizer, end ids, sampling defaults). */
    record Multimodal(String name, String languageModel, MultimodalModel model, Decoder decoder,
                      TextTokenizer tokenizer, Set<Integer> eosTokenIds, GenerationDefaults generation)
            implements LoadedModel {
    }

    record Adapter(String name, LoraAdapter adapter) implements LoadedModel {
    }
}

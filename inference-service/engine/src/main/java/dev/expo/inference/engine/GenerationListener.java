package dev.expo.inference.engine;

import java.util.List;

/** Receives a generation as it happens; calls come from the engine's thread, in order. */
public interface GenerationListener {

    /**
     * New output: text safe to show (never a split character, never part of a stop string) and the token ids
     * produced since the last call (with their logprobs when asked).
     */
    void onDelta(String text, int[] tokenIds, List<Outputs.GeneratedLogprobs> logprobs);

    void onFinished(Outputs.FinishReason reason, Outputs.Usage usage);

    void onError(RuntimeException failure);
}

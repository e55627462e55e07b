package dev.expo.evaluation.engine.runs;

import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * What a run needs of the other services; the gateway implements it with their gRPC clients. Failures are
 * {@link dev.expo.common.ExpoException}s with the backend's status kind.
 */
public interface EvaluationBackends {

    /** Fails unless {@code model} is in the store and is a reward model (NOT_FOUND / INVALID_ARGUMENT). */
    void checkRewardModel(String model);

    /** Fails unless the variant can run: its model (unless extrapolated) and adapter exist, its spec is valid. */
    void checkVariant(EvaluationRequest.Variant variant);

    boolean modelExists(String model);

    /** Extrapolates {@code spec} (the wire spec as JSON) into {@code outputModel}; blocks until it is published. */
    void extrapolate(String spec, String outputModel, Cancellation cancellation);

    /** Unloads the model from the inference service and removes it from the store. */
    void removeModel(String model);

    /** Starts one generation; many are in flight at once (the inference service batches them). */
    CompletableFuture<Generation> generate(GenerationCall call);

    /**
     * Rewards of prompt/response pairs, in order, through the reward model's chat template, at transformers' pooled
     * token or, with {@code lastToken}, at the last one.
     */
    List<Double> reward(String rewardModel, boolean lastToken, List<RewardCall> calls);

    record GenerationCall(EvaluationRequest.Variant variant, String model, EvaluationRequest.Prompt prompt,
            boolean useChatTemplate, long seed) {
    }

    /** A generated output: its text, its token ids (an end-of-sequence token included) and why it stopped. */
    record Generation(String text, int[] tokenIds, String finishReason) {
    }

    record RewardCall(String instruction, String response) {
    }

    /** Polled by long calls; set when the run is cancelled or the gateway stops. */
    interface Cancellation {
        boolean cancelled();
    }
}

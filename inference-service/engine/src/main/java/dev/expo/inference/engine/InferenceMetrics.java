package dev.expo.inference.engine;

import java.time.Duration;

/** What the engine reports as it serves; the service turns it into Prometheus metrics. All methods are cheap. */
public interface InferenceMetrics {

    /** A generation finished its prefill and produced its first token. */
    default void firstToken(String model, Duration timeToFirstToken) {
    }

    /** A decode step produced one token for a sequence, this long after its previous one. */
    default void token(String model, Duration interTokenLatency) {
    }

    default void finished(String model, Outputs.FinishReason reason, int generatedTokens) {
    }

    /** A generation started from a parked cache: this many of its prompt's positions were not computed again. */
    default void prefixCacheHit(String model, int positions) {
    }

    /** The scheduler's state after an iteration. */
    default void batch(String model, int running, int waiting) {
    }

    /** Reports nothing. */
    InferenceMetrics NONE = new InferenceMetrics() {
    };
}

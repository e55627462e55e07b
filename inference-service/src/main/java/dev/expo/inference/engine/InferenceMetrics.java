package dev.expo.inference.engine;

import java.time.Duration;

/** What the engine reports as it serves; the service turns it into Prometheus metrics. All methods are cheap. */
public interface InferenceMetrics {

    /** A generation finished its prefill and produced its first token. */
    void firstToken(String model, Duration timeToFirstToken);

    /** A decode step produced one token for a sequence, this long after its previous one. */
    void token(String model, Duration interTokenLatency);

    void finished(String model, Outputs.FinishReason reason, int generatedTokens);

    /** The scheduler's state after an iteration. */
    void batch(String model, int running, int waiting);

    InferenceMetrics NONE = new InferenceMetrics() {
        @Override
        public void firstToken(String model, Duration timeToFirstToken) {
        }

        @Override
        public void token(String model, Duration interTokenLatency) {
        }

        @Override
        public void finished(String model, Outputs.FinishReason reason, int generatedTokens) {
        }

        @Override
        public void batch(String model, int running, int waiting) {
        }
    };
}

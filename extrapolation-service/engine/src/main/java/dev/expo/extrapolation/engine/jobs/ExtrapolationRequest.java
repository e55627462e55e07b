package dev.expo.extrapolation.engine.jobs;

import dev.expo.extrapolation.engine.ExtrapolationSpec;

import java.util.Objects;

/**
 * One job's whole order, as the engine keeps and reports it.
 *
 * @param outputModel   the new model's name in the store
 * @param overwrite     replace an existing model of that name (only once the new one is complete)
 * @param maxShardBytes largest output shard in bytes; 0 keeps the aligned model's shard layout
 */
public record ExtrapolationRequest(ExtrapolationSpec spec, String outputModel, boolean overwrite, long maxShardBytes) {

    public ExtrapolationRequest {
        Objects.requireNonNull(spec, "spec");
    }
}

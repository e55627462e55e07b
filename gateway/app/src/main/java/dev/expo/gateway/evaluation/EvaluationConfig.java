package dev.expo.gateway.evaluation;

import io.smallrye.config.ConfigMapping;
import io.smallrye.config.WithDefault;

/** The evaluation harness's settings (docs/configuration.md). */
@ConfigMapping(prefix = "expo.evaluation")
public interface EvaluationConfig {

    /** Generations a run keeps in flight at once: the inference service's batch size (16) keeps its batch full. */
    @WithDefault("16")
    int concurrency();

    /** Runs that may wait behind the running one; beyond, RESOURCE_EXHAUSTED. */
    @WithDefault("8")
    int maxQueued();
}

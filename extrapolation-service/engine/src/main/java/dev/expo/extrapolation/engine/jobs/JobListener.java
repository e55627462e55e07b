package dev.expo.extrapolation.engine.jobs;

import dev.expo.extrapolation.engine.ExtrapolationProgress;

/** Follows one job; calls are serialized per job. */
public interface JobListener {

    void onProgress(ExtrapolationJob job, ExtrapolationProgress progress);

    /** The job reached SUCCEEDED, FAILED or CANCELLED. */
    void onFinished(ExtrapolationJob job);
}

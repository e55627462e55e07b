package dev.expo.extrapolation.engine;

import java.time.Duration;

/**
 * Where a job is. Bytes count input read (both models); {@code eta} is null until a rate is known.
 */
public record ExtrapolationProgress(Phase phase, int tensorsDone, int tensorsTotal, long bytesDone, long bytesTotal,
                                    double bytesPerSecond, Duration elapsed, Duration eta) {

    public enum Phase { QUEUED, VALIDATING, WRITING, PUBLISHING, DONE }

    public static ExtrapolationProgress of(Phase phase) {
        return new ExtrapolationProgress(phase, 0, 0, 0, 0, 0, Duration.ZERO, null);
    }
}

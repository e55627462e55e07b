package dev.expo.extrapolation.engine;

import dev.expo.checkpoint.DType;

import java.time.Duration;
import java.util.List;

/**
 * A published model.
 *
 * @param outputDtype null when tensors kept different dtypes
 */
public record ExtrapolationResult(String outputModel, int tensorCount, long outputBytes, int shardCount,
                                  DType outputDtype, Duration duration, long inputBytes,
                                  List<NonFiniteTensor> nonFiniteTensors) {

    public ExtrapolationResult {
        nonFiniteTensors = List.copyOf(nonFiniteTensors);
    }

    /** A tensor with NaN or infinite values after extrapolation (alpha too large for the output dtype). */
    public record NonFiniteTensor(String name, long nanCount, long infCount) {
    }
}

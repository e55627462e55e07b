package dev.expo.extrapolation.engine;

import dev.expo.checkpoint.DType;
import dev.expo.common.ExpoException;
import dev.expo.common.store.ModelStore;
import dev.expo.extrapolation.engine.schedule.AlphaSchedule;

import java.util.Objects;

/**
 * What to extrapolate: theta = aligned + alpha * (aligned - base), alpha from the schedule.
 *
 * @param outputDtype null keeps each tensor's dtype (the aligned model's)
 */
public record ExtrapolationSpec(String baseModel, String alignedModel, AlphaSchedule schedule, DType outputDtype) {

    public ExtrapolationSpec {
        ModelStore.checkName("base_model", baseModel);
        ModelStore.checkName("aligned_model", alignedModel);
        Objects.requireNonNull(schedule, "schedule");
        if (outputDtype != null && !outputDtype.isFloatingPoint16or32()) {
            throw ExpoException.invalidArgument("output_dtype", outputDtype,
                    "must be BF16, F16 or F32");
        }
    }
}

package dev.expo.training.config;

import io.smallrye.config.ConfigMapping;
import io.smallrye.config.WithDefault;

/** {@code training.*}: how many jobs the service takes. */
@ConfigMapping(prefix = "training")
public interface TrainingConfig {

    /** Jobs waiting behind the running one (one runs at a time: one device); beyond this, RESOURCE_EXHAUSTED. */
    @WithDefault("8")
    int maxQueued();
}

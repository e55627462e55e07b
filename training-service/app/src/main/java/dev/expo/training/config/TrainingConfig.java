package dev.expo.training.config;

import io.quarkus.runtime.configuration.MemorySize;
import io.smallrye.config.ConfigMapping;
import io.smallrye.config.WithDefault;

import java.util.Optional;

/** {@code training.*}: how many jobs the service takes, and how much memory a micro batch may use. */
@ConfigMapping(prefix = "training")
public interface TrainingConfig {

    /** Jobs waiting behind the running one (one runs at a time: one device); beyond this, RESOURCE_EXHAUSTED. */
    @WithDefault("8")
    int maxQueued();

    /**
     * The most memory a micro batch's forward and backward may take, by the trainer's estimate (e.g. 6G; unset = no
     * cap): a micro batch over it is handled as an out-of-memory (halved, the global batch kept, the step retried),
     * before the device or the operating system runs out. Real out-of-memory errors are handled the same way.
     */
    Optional<MemorySize> memoryCap();
}

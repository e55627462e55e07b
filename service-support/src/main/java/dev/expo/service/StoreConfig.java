package dev.expo.service;

import io.smallrye.config.ConfigMapping;
import io.smallrye.config.WithDefault;

/** Where the model store is: {@code expo.model-store}, or the environment variable {@code EXPO_MODEL_STORE}. */
@ConfigMapping(prefix = "expo")
public interface StoreConfig {

    @WithDefault("model-store")
    String modelStore();
}

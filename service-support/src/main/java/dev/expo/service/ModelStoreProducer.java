package dev.expo.service;

import dev.expo.common.store.ModelStore;
import jakarta.enterprise.inject.Produces;
import jakarta.inject.Singleton;

import java.nio.file.Path;

/** Builds the engine's {@link ModelStore} from configuration, once per app. */
public class ModelStoreProducer {

    @Produces
    @Singleton
    ModelStore modelStore(StoreConfig config) {
        return new ModelStore(Path.of(config.modelStore()));
    }
}

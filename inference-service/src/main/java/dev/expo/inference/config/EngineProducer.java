package dev.expo.inference.config;

import dev.expo.checkpoint.catalog.ModelCatalog;
import dev.expo.common.store.ModelStore;
import jakarta.enterprise.inject.Produces;
import jakarta.inject.Singleton;

/** Builds the inference engine's plain-Java objects from configuration. */
public class EngineProducer {

    @Produces
    @Singleton
    ModelCatalog modelCatalog(ModelStore store) {
        return new ModelCatalog(store);
    }
}

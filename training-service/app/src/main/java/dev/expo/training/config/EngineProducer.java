package dev.expo.training.config;

import dev.expo.common.store.ModelStore;
import dev.expo.training.engine.data.DatasetPreprocessor;
import dev.expo.training.engine.data.DatasetStore;
import jakarta.enterprise.inject.Produces;
import jakarta.inject.Singleton;

/** Builds the training engine's parts over the store. */
public class EngineProducer {

    @Produces
    @Singleton
    DatasetStore datasets(ModelStore store) {
        return new DatasetStore(store);
    }

    @Produces
    @Singleton
    DatasetPreprocessor preprocessor(DatasetStore datasets) {
        return new DatasetPreprocessor(datasets);
    }
}

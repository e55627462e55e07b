package dev.expo.training.config;

import dev.expo.common.store.ModelStore;
import dev.expo.training.engine.data.DatasetPreprocessor;
import dev.expo.training.engine.data.DatasetStore;
import dev.expo.training.engine.jobs.TrainingJob;
import dev.expo.training.engine.jobs.TrainingJobs;
import io.quarkus.runtime.StartupEvent;
import io.quarkus.runtime.configuration.MemorySize;
import jakarta.enterprise.event.Observes;
import jakarta.enterprise.inject.Disposes;
import jakarta.enterprise.inject.Produces;
import jakarta.inject.Singleton;
import org.jboss.logging.Logger;

/** Builds the training engine's parts over the store; on start, resumes the jobs a stopped service left. */
public class EngineProducer {

    private static final Logger LOG = Logger.getLogger(EngineProducer.class);

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

    @Produces
    @Singleton
    TrainingJobs jobs(ModelStore store, DatasetStore datasets, TrainingConfig config, TrainingMetrics metrics) {
        return new TrainingJobs(store, datasets, config.maxQueued(),
                config.memoryCap().map(MemorySize::asLongValue).orElse(0L), metrics);
    }

    /** A running job is stopped between steps, not ended: the next start resumes it. */
    void closeJobs(@Disposes TrainingJobs jobs) {
        jobs.close();
    }

    void onStart(@Observes StartupEvent event, TrainingJobs jobs) {
        for (TrainingJob job : jobs.recover()) {
            LOG.infof("training job %s resumes (%s -> %s)", job.id(), job.request().dataset(),
                    job.request().outputModel());
        }
    }
}

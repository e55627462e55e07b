package dev.expo.extrapolation.config;

import dev.expo.common.store.ModelStore;
import dev.expo.extrapolation.engine.Extrapolator;
import dev.expo.extrapolation.engine.Planner;
import dev.expo.extrapolation.engine.jobs.ExtrapolationJobs;
import dev.expo.extrapolation.engine.jobs.JobJournal;
import dev.expo.extrapolation.engine.kernel.ExtrapolationKernel;
import io.quarkus.runtime.StartupEvent;
import jakarta.enterprise.event.Observes;
import jakarta.enterprise.inject.Disposes;
import jakarta.enterprise.inject.Produces;
import jakarta.inject.Singleton;
import org.jboss.logging.Logger;

/** Builds the engine from configuration, and tidies the store when the service starts. */
public class EngineProducer {

    private static final Logger LOG = Logger.getLogger(EngineProducer.class);

    @Produces
    @Singleton
    Planner planner(ModelStore store) {
        return new Planner(store);
    }

    @Produces
    @Singleton
    Extrapolator extrapolator(ModelStore store, ExtrapolationConfig config) {
        int workers = config.workers() > 0 ? config.workers() : Runtime.getRuntime().availableProcessors();
        ExtrapolationKernel kernel = ExtrapolationKernel.best();
        LOG.infof("extrapolation engine: %d worker(s), %s", workers, kernel.getClass().getSimpleName());
        return new Extrapolator(store, kernel,
                new Extrapolator.Settings(workers, config.chunkElements(), config.syncEveryBytes()));
    }

    @Produces
    @Singleton
    ExtrapolationJobs jobs(Planner planner, Extrapolator extrapolator, ExtrapolationConfig config,
                           ExtrapolationMetrics metrics, ModelStore store) {
        ExtrapolationConfig.Limits limits = config.limits();
        // Unfinished jobs are journalled in the store; the gRPC layer restores them at start (it decodes requests).
        return new ExtrapolationJobs(planner, extrapolator,
                new ExtrapolationJobs.Limits(limits.maxRunning(), limits.maxQueued(), limits.retained()),
                metrics::recordFinished, new JobJournal(store.root().resolve(".jobs").resolve("extrapolation")));
    }

    void closeJobs(@Disposes ExtrapolationJobs jobs) {
        jobs.close();
    }

    /**
     * A job killed with the process left a staging folder; it is garbage now. The kernel is compiled by the JIT in
     * the background, so the first job runs at full speed.
     */
    void onStart(@Observes StartupEvent event, ModelStore store) {
        store.removeAbandonedStaging();
        LOG.infof("model store: %s", store.root());
        Thread.ofPlatform().daemon().name("kernel-warm-up").start(() -> {
            long start = System.nanoTime();
            ExtrapolationKernel.warmUp(ExtrapolationKernel.best());
            LOG.debugf("kernel warmed up in %d ms", (System.nanoTime() - start) / 1_000_000);
        });
    }
}

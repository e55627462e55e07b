package dev.expo.gateway.evaluation;

import dev.expo.api.v1.ExtrapolationServiceGrpc;
import dev.expo.api.v1.InferenceServiceGrpc;
import dev.expo.common.store.ModelStore;
import dev.expo.evaluation.engine.runs.EvaluationRun;
import dev.expo.evaluation.engine.runs.EvaluationRuns;
import dev.expo.gateway.routing.Backends;
import io.quarkus.runtime.StartupEvent;
import jakarta.enterprise.event.Observes;
import jakarta.enterprise.inject.Disposes;
import jakarta.enterprise.inject.Produces;
import jakarta.inject.Singleton;
import org.jboss.logging.Logger;

/** The evaluation runs over the store's {@code .jobs/evaluation/}; on start, continues the runs a stop left. */
public class EvaluationRunsProducer {

    private static final Logger LOG = Logger.getLogger(EvaluationRunsProducer.class);

    @Produces
    @Singleton
    EvaluationRuns runs(ModelStore store, Backends backends, EvaluationConfig config) {
        GrpcEvaluationBackends grpc = new GrpcEvaluationBackends(
                backends.of(InferenceServiceGrpc.SERVICE_NAME).channel(),
                backends.of(ExtrapolationServiceGrpc.SERVICE_NAME).channel(), store);
        return new EvaluationRuns(store.root().resolve(".jobs").resolve("evaluation"), grpc, config.concurrency(),
                config.maxQueued());
    }

    /** A running run is stopped between batches, not ended: the next start continues it. */
    void close(@Disposes EvaluationRuns runs) {
        runs.close();
    }

    void onStart(@Observes StartupEvent event, EvaluationRuns runs) {
        for (EvaluationRun run : runs.recover()) {
            LOG.infof("evaluation run %s continues (%d of %d outputs scored)", run.id(), run.outputsDone(),
                    run.outputsTotal());
        }
    }
}

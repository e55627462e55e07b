package dev.expo.training.grpc;

import dev.expo.api.v1.CancelTrainingJobRequest;
import dev.expo.api.v1.GetTrainingJobRequest;
import dev.expo.api.v1.ListTrainingJobsRequest;
import dev.expo.api.v1.ListTrainingJobsResponse;
import dev.expo.api.v1.PreprocessDatasetRequest;
import dev.expo.api.v1.PreprocessDatasetResponse;
import dev.expo.api.v1.StartTrainingRequest;
import dev.expo.api.v1.TrainingEvent;
import dev.expo.api.v1.TrainingJob;
import dev.expo.api.v1.TrainingService;
import dev.expo.service.NotBuilt;
import io.quarkus.grpc.GrpcService;
import io.smallrye.mutiny.Multi;
import io.smallrye.mutiny.Uni;

/**
 * The training contract. DDPO training is not built yet, so every RPC answers UNIMPLEMENTED (never a fake job);
 * the service runs so that the stack, health checks and routing are real from day one.
 */
@GrpcService
public class TrainingGrpcService implements TrainingService {

    @Override
    public Uni<PreprocessDatasetResponse> preprocessDataset(PreprocessDatasetRequest request) {
        return Uni.createFrom().failure(NotBuilt.rpc("TrainingService.PreprocessDataset"));
    }

    @Override
    public Uni<TrainingJob> startTraining(StartTrainingRequest request) {
        return Uni.createFrom().failure(NotBuilt.rpc("TrainingService.StartTraining"));
    }

    @Override
    public Multi<TrainingEvent> watchJob(dev.expo.api.v1.WatchTrainingJobRequest request) {
        return Multi.createFrom().failure(NotBuilt.rpc("TrainingService.WatchJob"));
    }

    @Override
    public Uni<TrainingJob> getJob(GetTrainingJobRequest request) {
        return Uni.createFrom().failure(NotBuilt.rpc("TrainingService.GetJob"));
    }

    @Override
    public Uni<ListTrainingJobsResponse> listJobs(ListTrainingJobsRequest request) {
        return Uni.createFrom().failure(NotBuilt.rpc("TrainingService.ListJobs"));
    }

    @Override
    public Uni<TrainingJob> cancelJob(CancelTrainingJobRequest request) {
        return Uni.createFrom().failure(NotBuilt.rpc("TrainingService.CancelJob"));
    }
}

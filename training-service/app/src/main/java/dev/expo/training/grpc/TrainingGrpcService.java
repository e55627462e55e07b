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
import dev.expo.api.v1.RejectedRow;
import dev.expo.common.store.ModelStore;
import dev.expo.service.NotBuilt;
import dev.expo.training.engine.data.DatasetPreprocessor;
import dev.expo.training.engine.data.DatasetStore;
import io.quarkus.grpc.GrpcService;
import io.smallrye.common.annotation.Blocking;
import io.smallrye.mutiny.Multi;
import io.smallrye.mutiny.Uni;
import jakarta.inject.Inject;

import java.nio.file.Path;

/**
 * The training contract. Datasets are built (PreprocessDataset); DDPO training jobs are not yet, so those RPCs
 * answer UNIMPLEMENTED (never a fake job).
 */
@GrpcService
public class TrainingGrpcService implements TrainingService {

    /** The seed's limits (Muffin's max prompt / response lengths). */
    private static final int DEFAULT_MAX_TOKENS = 256;

    @Inject
    ModelStore store;

    @Inject
    DatasetStore datasets;

    @Inject
    DatasetPreprocessor preprocessor;

    @Override
    @Blocking
    public Uni<PreprocessDatasetResponse> preprocessDataset(PreprocessDatasetRequest request) {
        Path source = datasets.source(request.getSource());
        Path tokenizer = store.existing("tokenizer_model", ModelStore.checkName("tokenizer_model",
                request.getTokenizerModel()));
        DatasetPreprocessor.Format format = switch (request.getFormat()) {
            case DATASET_FORMAT_RLHFV_PARQUET -> DatasetPreprocessor.Format.RLHFV_PARQUET;
            case DATASET_FORMAT_JSONL -> DatasetPreprocessor.Format.JSONL;
            default -> DatasetPreprocessor.guessFormat(source);
        };
        DatasetPreprocessor.Result result = preprocessor.run(new DatasetPreprocessor.Request(source, format,
                request.getTokenizerModel(), tokenizer, request.getOutputDataset(), request.getFraction(),
                request.getSeed(), orDefault(request.getMaxPromptTokens()), orDefault(request.getMaxResponseTokens()),
                request.getOverwrite()));
        PreprocessDatasetResponse.Builder response = PreprocessDatasetResponse.newBuilder()
                .setDataset(result.dataset())
                .setRowsRead(result.rowsRead())
                .setRowsValid(result.rowsValid())
                .setRowsKept(result.rowsKept())
                .setSourceSha256(datasets.load(result.dataset()).info().path("source_sha256").asText());
        result.rejected().forEach(r -> response.addRejected(RejectedRow.newBuilder().setRow(r.row())
                .setReason(r.reason())));
        return Uni.createFrom().item(response.build());
    }

    private static int orDefault(int maxTokens) {
        if (maxTokens < 0) {
            throw dev.expo.common.ExpoException.invalidArgument("max_prompt_tokens / max_response_tokens", maxTokens,
                    "must be positive (0 = " + DEFAULT_MAX_TOKENS + ")");
        }
        return maxTokens == 0 ? DEFAULT_MAX_TOKENS : maxTokens;
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

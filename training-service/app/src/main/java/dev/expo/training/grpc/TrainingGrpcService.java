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
import dev.expo.api.v1.JobState;
import dev.expo.api.v1.WatchTrainingJobRequest;
import dev.expo.service.Pages;
import dev.expo.service.ServerStream;
import dev.expo.training.engine.jobs.TrainingJobs;
import dev.expo.training.engine.data.DatasetPreprocessor;
import dev.expo.training.engine.data.DatasetStore;
import io.quarkus.grpc.GrpcService;
import io.smallrye.common.annotation.Blocking;
import io.smallrye.mutiny.Multi;
import io.smallrye.mutiny.Uni;
import jakarta.inject.Inject;

import java.nio.file.Path;
import java.util.List;

/**
 * expo.v1.TrainingService: datasets (PreprocessDataset) and durable DDPO training jobs, mapped to the engine. A
 * client leaving WatchJob does not cancel the job (CancelJob does): training outlives its watchers.
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

    @Inject
    TrainingJobs jobs;

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
    @Blocking
    public Uni<TrainingJob> startTraining(StartTrainingRequest request) {
        // Planning loads the models and checks everything against the store: bad input fails here, with no job.
        return Uni.createFrom().item(TrainingProtoMapper.toProto(jobs.submit(TrainingProtoMapper.toRequest(request))));
    }

    /** Replays the job's steps from from_step, then follows it; the last event is its final state. */
    @Override
    public Multi<TrainingEvent> watchJob(WatchTrainingJobRequest request) {
        return ServerStream.open(stream -> {
            dev.expo.training.engine.jobs.TrainingJob job = jobs.get(request.getJobId());
            dev.expo.training.engine.jobs.TrainingJob.Listener listener =
                    new dev.expo.training.engine.jobs.TrainingJob.Listener() {
                        @Override
                        public void onStep(dev.expo.training.engine.jobs.TrainingJob j,
                                           dev.expo.training.engine.jobs.TrainingJob.Step step) {
                            stream.emit(TrainingProtoMapper.stepEvent(j, step));
                        }

                        @Override
                        public void onState(dev.expo.training.engine.jobs.TrainingJob j) {
                            if (j.state().isFinal()) {
                                stream.complete(TrainingProtoMapper.jobEvent(j));
                            } else {
                                stream.emit(TrainingProtoMapper.jobEvent(j));
                            }
                        }
                    };
            stream.emit(TrainingProtoMapper.jobEvent(job));
            job.follow(request.getFromStep(), listener);
            stream.onStop(() -> job.unfollow(listener));
        });
    }

    @Override
    public Uni<TrainingJob> getJob(GetTrainingJobRequest request) {
        return Uni.createFrom().item(() -> TrainingProtoMapper.toProto(jobs.get(request.getJobId())));
    }

    @Override
    public Uni<ListTrainingJobsResponse> listJobs(ListTrainingJobsRequest request) {
        return Uni.createFrom().item(() -> {
            List<dev.expo.training.engine.jobs.TrainingJob> matching = jobs.list().stream()
                    .filter(j -> request.getState() == JobState.JOB_STATE_UNSPECIFIED
                            || TrainingProtoMapper.toProto(j.state()) == request.getState())
                    .toList();
            // Newest first; the page token is the position-independent key "<inverted time>/<id>".
            Pages.Page<dev.expo.training.engine.jobs.TrainingJob> page = Pages.page(matching,
                    TrainingGrpcService::newestFirstKey, request.getPageSize(), request.getPageToken());
            ListTrainingJobsResponse.Builder response = ListTrainingJobsResponse.newBuilder()
                    .setNextPageToken(page.nextPageToken());
            page.items().forEach(j -> response.addJobs(TrainingProtoMapper.toProto(j)));
            return response.build();
        });
    }

    private static String newestFirstKey(dev.expo.training.engine.jobs.TrainingJob job) {
        return Pages.newestFirstKey(job.createTime(), job.id());
    }

    @Override
    public Uni<TrainingJob> cancelJob(CancelTrainingJobRequest request) {
        return Uni.createFrom().item(() -> TrainingProtoMapper.toProto(jobs.cancel(request.getJobId())));
    }
}

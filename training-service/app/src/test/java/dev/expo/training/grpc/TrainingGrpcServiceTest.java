package dev.expo.training.grpc;

import dev.expo.api.v1.PreprocessDatasetRequest;
import dev.expo.api.v1.PreprocessDatasetResponse;
import dev.expo.api.v1.CancelTrainingJobRequest;
import dev.expo.api.v1.DdpoSettings;
import dev.expo.api.v1.GetTrainingJobRequest;
import dev.expo.api.v1.JobState;
import dev.expo.api.v1.ListTrainingJobsRequest;
import dev.expo.api.v1.LoraSettings;
import dev.expo.api.v1.Precision;
import dev.expo.api.v1.StartTrainingRequest;
import dev.expo.api.v1.TrainingEvent;
import dev.expo.api.v1.TrainingJob;
import dev.expo.api.v1.TrainingStepMetrics;
import dev.expo.api.v1.WatchTrainingJobRequest;
import dev.expo.api.v1.TrainingServiceGrpc;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.quarkus.grpc.GrpcClient;
import io.quarkus.test.common.QuarkusTestResource;
import io.quarkus.test.junit.QuarkusTest;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** PreprocessDataset and training jobs as clients see them, and the status of each kind of bad request. */
@QuarkusTest
@QuarkusTestResource(value = TestStoreResource.class, restrictToAnnotatedClass = true)
class TrainingGrpcServiceTest {

    @GrpcClient("training")
    TrainingServiceGrpc.TrainingServiceBlockingStub client;

    private static PreprocessDatasetRequest.Builder request(String output) {
        return PreprocessDatasetRequest.newBuilder().setSource("raw/rlhfv.parquet").setTokenizerModel("tiny-llama-sft")
                .setOutputDataset(output);
    }

    @Test
    void preprocessesTheHubParquetIntoTheStore() {
        PreprocessDatasetResponse response = client.preprocessDataset(request("rlhfv").build());
        assertThat(response.getRowsRead()).isEqualTo(24);
        // Row 17's responses pass the seed's 256-token limit.
        assertThat(response.getRowsValid()).isEqualTo(19);
        assertThat(response.getRowsKept()).isEqualTo(19);
        assertThat(response.getRejectedList()).extracting(r -> r.getRow()).containsExactly(7L, 15L, 17L, 19L, 20L);
        assertThat(response.getRejected(2).getReason()).contains("too long");
        assertThat(response.getSourceSha256()).hasSize(64);
        assertThat(Files.isRegularFile(TestStoreResource.root.resolve("datasets/rlhfv/dataset_info.json"))).isTrue();
        assertThat(TestStoreResource.root.resolve("datasets/.staging")).isEmptyDirectory();

        PreprocessDatasetResponse fifth = client.preprocessDataset(request("rlhfv-20pct").setFraction(0.2).setSeed(3)
                .build());
        assertThat(fifth.getRowsKept()).isEqualTo(4);   // round(0.2 * 19)
    }

    @Test
    void badRequestsGetAClearStatusAndWriteNothing() {
        client.preprocessDataset(request("taken").build());
        expect(Status.Code.ALREADY_EXISTS, "already exists", request("taken"));
        expect(Status.Code.NOT_FOUND, "no-such-model", request("x").setTokenizerModel("no-such-model"));
        expect(Status.Code.NOT_FOUND, "does not exist", request("x").setSource("raw/missing.parquet"));
        expect(Status.Code.INVALID_ARGUMENT, "fraction", request("x").setFraction(2));
        String notData = TestStoreResource.root.resolve("tiny-llama-sft/config.json").toString();
        expect(Status.Code.INVALID_ARGUMENT, "format", request("x").setSource(notData));
        expect(Status.Code.FAILED_PRECONDITION, "no usable row", request("x").setSource(notData)
                .setFormat(dev.expo.api.v1.DatasetFormat.DATASET_FORMAT_JSONL));
        assertThat(TestStoreResource.root.resolve("datasets/x")).doesNotExist();
    }

    private static StartTrainingRequest.Builder training(String dataset, String output) {
        return StartTrainingRequest.newBuilder().setLanguageModel("tiny-llama-sft").setVisionTower("tiny-clip-vision")
                .setDataset(dataset).setOutputModel(output)
                .setHyperparameters(DdpoSettings.newBuilder().setLearningRate(1e-3).setEpochs(1)
                        .setGlobalBatchSize(2).setMicroBatchSize(1).setSeed(4));
    }

    @Test
    void trainsAJobWatchedToItsEndAndRefusesBadRequestsWithNoJob() {
        client.preprocessDataset(request("small").setFraction(0.2).setSeed(1).build());
        expectTraining(Status.Code.INVALID_ARGUMENT, "learning_rate", training("small", "o")
                .setHyperparameters(DdpoSettings.newBuilder().setLearningRate(3)));
        expectTraining(Status.Code.INVALID_ARGUMENT, "multiple", training("small", "o")
                .setHyperparameters(DdpoSettings.newBuilder().setGlobalBatchSize(3).setMicroBatchSize(2)));
        expectTraining(Status.Code.NOT_FOUND, "no-such", training("small", "o").setVisionTower("no-such"));
        expectTraining(Status.Code.NOT_FOUND, "dataset", training("nope", "o"));
        expectTraining(Status.Code.INVALID_ARGUMENT, "target_modules", training("small", "o")
                .setLora(LoraSettings.newBuilder().addTargetModules("qkv_proj")));
        expectTraining(Status.Code.FAILED_PRECONDITION, "GPU", training("small", "o")
                .setPrecision(Precision.PRECISION_FP16_MIXED));
        assertThat(client.listJobs(ListTrainingJobsRequest.getDefaultInstance()).getJobsList()).isEmpty();

        TrainingJob job = client.startTraining(training("small", "trained").build());
        assertThat(job.getRequest().getHyperparameters().getBeta()).isEqualTo(0.1);   // the seed's defaults
        assertThat(job.getRequest().getLora().getTargetModulesList()).containsExactly("q_proj", "v_proj");
        List<TrainingEvent> events = new ArrayList<>();
        client.watchJob(WatchTrainingJobRequest.newBuilder().setJobId(job.getJobId()).build())
                .forEachRemaining(events::add);
        TrainingEvent last = events.getLast();
        assertThat(last.getJob().getState()).isEqualTo(JobState.JOB_STATE_SUCCEEDED);
        List<TrainingStepMetrics> steps = events.stream().filter(TrainingEvent::hasStep).map(TrainingEvent::getStep)
                .toList();
        assertThat(steps).extracting(TrainingStepMetrics::getStep).containsExactly(1L, 2L);   // 4 rows, batch 2
        assertThat(steps).allSatisfy(s -> {
            assertThat(s.getLoss()).isPositive();
            assertThat(s.getTotalSteps()).isEqualTo(2);
            assertThat(s.getTokensPerSecond()).isPositive();
        });
        assertThat(last.getJob().getCheckpointsList()).containsExactly("checkpoint-2");
        assertThat(TestStoreResource.root.resolve("trained/expo-model.json")).exists();
        // A watcher that comes later replays from the step it asks for.
        List<TrainingEvent> replay = new ArrayList<>();
        client.watchJob(WatchTrainingJobRequest.newBuilder().setJobId(job.getJobId()).setFromStep(2).build())
                .forEachRemaining(replay::add);
        assertThat(replay.stream().filter(TrainingEvent::hasStep).map(e -> e.getStep().getStep())).containsExactly(2L);
        assertThat(client.getJob(GetTrainingJobRequest.newBuilder().setJobId(job.getJobId()).build()).getLatest()
                .getStep()).isEqualTo(2);
        assertThat(client.listJobs(ListTrainingJobsRequest.newBuilder().setState(JobState.JOB_STATE_SUCCEEDED)
                .build()).getJobsList()).extracting(TrainingJob::getJobId).containsExactly(job.getJobId());
        assertThat(client.cancelJob(CancelTrainingJobRequest.newBuilder().setJobId(job.getJobId()).build())
                .getState()).isEqualTo(JobState.JOB_STATE_SUCCEEDED);
        expectTraining(Status.Code.ALREADY_EXISTS, "trained", training("small", "trained"));
        assertThatThrownBy(() -> client.getJob(GetTrainingJobRequest.newBuilder().setJobId("nope").build()))
                .isInstanceOfSatisfying(StatusRuntimeException.class,
                        e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.NOT_FOUND));
    }

    private void expectTraining(Status.Code code, String message, StartTrainingRequest.Builder request) {
        assertThatThrownBy(() -> client.startTraining(request.build()))
                .isInstanceOfSatisfying(StatusRuntimeException.class, e -> {
                    assertThat(e.getStatus().getCode()).isEqualTo(code);
                    assertThat(e.getStatus().getDescription()).contains(message);
                });
    }

    private void expect(Status.Code code, String message, PreprocessDatasetRequest.Builder request) {
        assertThatThrownBy(() -> client.preprocessDataset(request.build()))
                .isInstanceOfSatisfying(StatusRuntimeException.class, e -> {
                    assertThat(e.getStatus().getCode()).isEqualTo(code);
                    assertThat(e.getStatus().getDescription()).contains(message);
                });
    }
}

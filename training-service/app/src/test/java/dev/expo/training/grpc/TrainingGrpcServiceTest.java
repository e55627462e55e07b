package dev.expo.training.grpc;

import dev.expo.api.v1.PreprocessDatasetRequest;
import dev.expo.api.v1.PreprocessDatasetResponse;
import dev.expo.api.v1.StartTrainingRequest;
import dev.expo.api.v1.TrainingServiceGrpc;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.quarkus.grpc.GrpcClient;
import io.quarkus.test.common.QuarkusTestResource;
import io.quarkus.test.junit.QuarkusTest;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** PreprocessDataset as clients see it, the status of each kind of bad request, and what is not built yet. */
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
        // The trainer itself is not built yet: no fake job.
        assertThatThrownBy(() -> client.startTraining(StartTrainingRequest.getDefaultInstance()))
                .isInstanceOfSatisfying(StatusRuntimeException.class,
                        e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.UNIMPLEMENTED));
    }

    private void expect(Status.Code code, String message, PreprocessDatasetRequest.Builder request) {
        assertThatThrownBy(() -> client.preprocessDataset(request.build()))
                .isInstanceOfSatisfying(StatusRuntimeException.class, e -> {
                    assertThat(e.getStatus().getCode()).isEqualTo(code);
                    assertThat(e.getStatus().getDescription()).contains(message);
                });
    }
}

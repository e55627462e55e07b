package dev.expo.e2e;

import dev.expo.api.v1.AlphaSchedule;
import dev.expo.api.v1.ExtrapolateRequest;
import dev.expo.api.v1.ExtrapolationJob;
import dev.expo.api.v1.ExtrapolationServiceGrpc;
import dev.expo.api.v1.ExtrapolationSpec;
import dev.expo.api.v1.InferenceServiceGrpc;
import dev.expo.api.v1.JobState;
import dev.expo.api.v1.ListModelsRequest;
import dev.expo.api.v1.ModelInfo;
import dev.expo.checkpoint.Checkpoint;
import dev.expo.checkpoint.TensorInfo;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import dev.expo.api.v1.ExtrapolateEvent;
import dev.expo.api.v1.ExtrapolationPhase;
import dev.expo.api.v1.GetExtrapolationJobRequest;
import java.util.Iterator;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** ExPO through the running stack: the golden outputs bit for bit, then cancellation and deadlines end to end. */
@ExtendWith(StackExtension.class)
class ExtrapolationIT {

    @BeforeAll
    static void models(Stack stack) throws IOException {
        stack.addModel("tiny-llama-sft", "tiny-llama-sft");
        stack.addModel("tiny-llama-dpo", "tiny-llama-dpo");
        stack.addModel("tiny-llama-dpo-sharded", "tiny-llama-dpo-sharded");
        SystemChecks.writeBigPair(stack.store);
    }

    private static ExtrapolationSpec uniform(String base, String aligned, double alpha) {
        return ExtrapolationSpec.newBuilder().setBaseModel(base).setAlignedModel(aligned)
                .setSchedule(AlphaSchedule.newBuilder().setAlpha(alpha)).build();
    }

    @Test
    void theCliReproducesTheGoldenModelsAndTheResultLoads(Stack stack) throws Exception {
        Cli.Result uniform = Cli.run(stack, "extrapolate", "--base", "tiny-llama-sft", "--aligned", "tiny-llama-dpo",
                "--alpha", "12", "--output", "expo-uniform");
        assertThat(uniform.exitCode()).as(uniform.toString()).isZero();
        assertThat(uniform.stdout()).contains("expo-uniform: 57 tensors");
        Cli.Result layerwise = Cli.run(stack, "extrapolate", "--base", "tiny-llama-sft", "--aligned",
                "tiny-llama-dpo-sharded", "--layer-alphas", "5,10,15", "--output", "expo-layerwise", "--json");
        assertThat(layerwise.exitCode()).as(layerwise.toString()).isZero();
        assertThat(layerwise.stdout()).contains("\"output_model\":\"expo-layerwise\"").contains("\"shard_count\":2");

        Path golden = stack.root.resolve("testdata/fixtures/tiny-llama-expo");
        assertThat(Files.mismatch(stack.store.resolve("expo-uniform/model.safetensors"),
                golden.resolve("uniform/model.safetensors"))).isEqualTo(-1L);
        try (Checkpoint out = Checkpoint.open(stack.store.resolve("expo-layerwise"));
             Checkpoint expected = Checkpoint.open(golden.resolve("layerwise"))) {
            for (TensorInfo tensor : expected.tensors()) {
                assertThat(out.tensor(tensor.name()).bytes().mismatch(expected.tensor(tensor.name()).bytes()))
                        .as(tensor.name()).isEqualTo(-1L);
            }
        }
        // The new models are models of the store, as the inference service sees it.
        List<String> models = InferenceServiceGrpc.newBlockingStub(stack.gateway())
                .listModels(ListModelsRequest.getDefaultInstance()).getModelsList().stream().map(ModelInfo::getName)
                .toList();
        assertThat(models).contains("expo-uniform", "expo-layerwise");
    }

    @Test
    void badFlagsAndUnknownModelsGiveOneLineAndANonZeroExit(Stack stack) throws Exception {
        Cli.Result badFlag = Cli.run(stack, "extrapolate", "--base", "a", "--aligned", "b", "--alpha", "x");
        assertThat(badFlag.exitCode()).isEqualTo(2);
        assertThat(badFlag.stderr()).startsWith("expo: ").doesNotContain("\tat ");
        Cli.Result unknown = Cli.run(stack, "extrapolate", "--base", "tiny-llama-sft", "--aligned", "no-such-model",
                "--alpha", "12", "--output", "x");
        assertThat(unknown.exitCode()).isEqualTo(1);
        assertThat(unknown.stderr().strip().lines()).singleElement().asString()
                .startsWith("expo: NOT_FOUND: aligned_model \"no-such-model\" is not in the model store");
        Cli.Result health = Cli.run(stack, "health");
        assertThat(health.exitCode()).as(health.toString()).isZero();
        assertThat(health.stdout().lines().filter(l -> l.endsWith("SERVING")).count()).isEqualTo(4);
    }

    @Test
    void aCancelledStreamCancelsTheJobAtTheBackendAndLeavesNothing(Stack stack) throws Exception {
        SystemChecks.assertCancelledStreamCancelsTheJob(stack.gateway(), stack.store, "big-cancelled");
    }

    @Test
    void aDeadlineThatPassesCancelsTheJob(Stack stack) throws Exception {
        ExtrapolateRequest request = ExtrapolateRequest.newBuilder().setSpec(uniform("big-sft", "big-dpo", 4))
                .setOutputModel("big-deadline").build();
        List<ExtrapolateEvent> seen = new ArrayList<>();
        // Short: with the store's files in the page cache and the kernel compiled, the whole job takes ~250 ms here.
        assertThatThrownBy(() -> ExtrapolationServiceGrpc.newBlockingStub(stack.gateway())
                .withDeadlineAfter(120, TimeUnit.MILLISECONDS).extrapolate(request).forEachRemaining(seen::add))
                .isInstanceOfSatisfying(StatusRuntimeException.class,
                        e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.DEADLINE_EXCEEDED));
        if (!seen.isEmpty()) {                          // else the deadline passed before the job was even queued
            ExtrapolationJob job = SystemChecks.awaitFinal(stack.gateway(), seen.getFirst().getJobId());
            assertThat(job.getState()).isEqualTo(JobState.JOB_STATE_CANCELLED);
        }
        assertThat(stack.store.resolve("big-deadline")).doesNotExist();
    }

    /**
     * kill -9 of the extrapolation service while a job writes: the client's stream ends UNAVAILABLE, no part of the
     * model is visible (nor left in staging after the restart), the job shows as failed after the restart, and a rerun
     * gives the same bits as an uninterrupted run.
     */
    @Test
    void killMinus9MidWriteLeavesNoModelShowsTheJobFailedAndARerunGivesTheSameBits(Stack stack) throws Exception {
        ExtrapolateRequest.Builder request = ExtrapolateRequest.newBuilder().setSpec(uniform("big-sft", "big-dpo", 4));
        ExtrapolationServiceGrpc.newBlockingStub(stack.gateway()).extrapolate(request.setOutputModel("big-reference")
                .build()).forEachRemaining(e -> { });

        Iterator<ExtrapolateEvent> events = ExtrapolationServiceGrpc.newBlockingStub(stack.gateway())
                .extrapolate(request.setOutputModel("big-killed").build());
        ExtrapolateEvent event;
        do {
            event = events.next();
        } while (event.getProgress().getPhase() != ExtrapolationPhase.EXTRAPOLATION_PHASE_WRITING);
        String jobId = event.getJobId();
        stack.killAndRestart("extrapolation-service");
        assertThatThrownBy(() -> events.forEachRemaining(e -> { })).isInstanceOfSatisfying(
                StatusRuntimeException.class, e -> assertThat(e.getStatus().getCode())
                        .isEqualTo(Status.Code.UNAVAILABLE));
        assertThat(stack.store.resolve("big-killed")).doesNotExist();
        assertThat(SystemChecks.stagingEntries(stack.store)).isZero();

        ExtrapolationJob job = ExtrapolationServiceGrpc.newBlockingStub(stack.gateway()).getJob(
                GetExtrapolationJobRequest.newBuilder().setJobId(jobId).build());
        assertThat(job.getState()).isEqualTo(JobState.JOB_STATE_FAILED);
        assertThat(job.getError().getMessage()).contains("stopped before this job finished", "big-killed");
        assertThat(job.getRequest().getOutputModel()).isEqualTo("big-killed");

        ExtrapolationServiceGrpc.newBlockingStub(stack.gateway()).extrapolate(request.setOutputModel("big-killed")
                .build()).forEachRemaining(e -> { });
        try (var files = Files.list(stack.store.resolve("big-reference"))) {
            // Every file but extrapolation.json, the provenance record (it names the output and when it was made).
            for (Path reference : files.filter(f -> !f.getFileName().toString().equals("extrapolation.json")).toList()) {
                Path rerun = stack.store.resolve("big-killed").resolve(reference.getFileName().toString());
                assertThat(Files.mismatch(reference, rerun)).as(reference.getFileName().toString()).isEqualTo(-1L);
            }
        }
    }
}

package dev.expo.e2e;

import dev.expo.api.v1.AlphaSchedule;
import dev.expo.api.v1.ExtrapolateEvent;
import dev.expo.api.v1.ExtrapolateRequest;
import dev.expo.api.v1.ExtrapolationJob;
import dev.expo.api.v1.ExtrapolationPhase;
import dev.expo.api.v1.ExtrapolationServiceGrpc;
import dev.expo.api.v1.ExtrapolationSpec;
import dev.expo.api.v1.GetExtrapolationJobRequest;
import dev.expo.api.v1.InferenceServiceGrpc;
import dev.expo.api.v1.JobState;
import dev.expo.api.v1.ListModelsRequest;
import dev.expo.api.v1.ModelInfo;
import dev.expo.benchmarks.SyntheticLlama;
import dev.expo.checkpoint.Checkpoint;
import dev.expo.checkpoint.TensorInfo;
import io.grpc.Context;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Iterator;
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
        // A pair big enough (2 x ~90 MB) that a job is still writing when the test cancels it.
        SyntheticLlama.writePair(new SyntheticLlama.Shape(8000, 1024, 2816, 4), 60_000_000,
                stack.store.resolve("big-sft"), stack.store.resolve("big-dpo"));
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
                .startsWith("expo: NOT_FOUND: model \"no-such-model\" is not in the model store");
        Cli.Result health = Cli.run(stack, "health");
        assertThat(health.exitCode()).as(health.toString()).isZero();
        assertThat(health.stdout().lines().filter(l -> l.endsWith("SERVING")).count()).isEqualTo(4);
    }

    @Test
    void aCancelledStreamCancelsTheJobAtTheBackendAndLeavesNothing(Stack stack) throws Exception {
        ExtrapolateRequest request = ExtrapolateRequest.newBuilder().setSpec(uniform("big-sft", "big-dpo", 4))
                .setOutputModel("big-cancelled").build();
        Context.CancellableContext context = Context.current().withCancellation();
        String jobId;
        try {
            Iterator<ExtrapolateEvent> events = context.call(() -> ExtrapolationServiceGrpc
                    .newBlockingStub(stack.gateway()).extrapolate(request));
            ExtrapolateEvent event;
            do {
                event = events.next();
            } while (event.getProgress().getPhase() != ExtrapolationPhase.EXTRAPOLATION_PHASE_WRITING);
            jobId = event.getJobId();
        } finally {
            context.cancel(null);   // the client goes away mid-write
        }
        ExtrapolationJob job = awaitFinal(stack, jobId);
        assertThat(job.getState()).isEqualTo(JobState.JOB_STATE_CANCELLED);
        assertThat(job.getProgress().getBytesDone()).isLessThan(job.getProgress().getBytesTotal());
        assertThat(stack.store.resolve("big-cancelled")).doesNotExist();
        assertThat(stagingEntries(stack)).isZero();
    }

    @Test
    void aDeadlineThatPassesCancelsTheJob(Stack stack) throws Exception {
        ExtrapolateRequest request = ExtrapolateRequest.newBuilder().setSpec(uniform("big-sft", "big-dpo", 4))
                .setOutputModel("big-deadline").build();
        List<ExtrapolateEvent> seen = new ArrayList<>();
        assertThatThrownBy(() -> ExtrapolationServiceGrpc.newBlockingStub(stack.gateway())
                .withDeadlineAfter(400, TimeUnit.MILLISECONDS).extrapolate(request).forEachRemaining(seen::add))
                .isInstanceOfSatisfying(StatusRuntimeException.class,
                        e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.DEADLINE_EXCEEDED));
        ExtrapolationJob job = awaitFinal(stack, seen.getFirst().getJobId());
        assertThat(job.getState()).isEqualTo(JobState.JOB_STATE_CANCELLED);
        assertThat(stack.store.resolve("big-deadline")).doesNotExist();
    }

    private static ExtrapolationJob awaitFinal(Stack stack, String jobId) throws InterruptedException {
        Instant deadline = Instant.now().plus(Duration.ofSeconds(30));
        while (true) {
            ExtrapolationJob job = ExtrapolationServiceGrpc.newBlockingStub(stack.gateway())
                    .getJob(GetExtrapolationJobRequest.newBuilder().setJobId(jobId).build());
            if (job.getState() == JobState.JOB_STATE_SUCCEEDED || job.getState() == JobState.JOB_STATE_FAILED
                    || job.getState() == JobState.JOB_STATE_CANCELLED || Instant.now().isAfter(deadline)) {
                return job;
            }
            Thread.sleep(50);
        }
    }

    private static long stagingEntries(Stack stack) throws IOException {
        Path staging = stack.store.resolve(".staging");
        if (!Files.exists(staging)) {
            return 0;
        }
        try (var entries = Files.list(staging)) {
            return entries.count();
        }
    }
}

package dev.expo.extrapolation.grpc;

import dev.expo.api.v1.AlphaSchedule;
import dev.expo.api.v1.CancelExtrapolationJobRequest;
import dev.expo.api.v1.ExtrapolateEvent;
import dev.expo.api.v1.ExtrapolateRequest;
import dev.expo.api.v1.ExtrapolationJob;
import dev.expo.api.v1.ExtrapolationPhase;
import dev.expo.api.v1.ExtrapolationServiceGrpc;
import dev.expo.api.v1.ExtrapolationSpec;
import dev.expo.api.v1.GetExtrapolationJobRequest;
import dev.expo.api.v1.JobState;
import dev.expo.api.v1.LayerGroups;
import dev.expo.api.v1.ListExtrapolationJobsRequest;
import dev.expo.api.v1.ListExtrapolationJobsResponse;
import dev.expo.api.v1.PlanRequest;
import dev.expo.api.v1.PlanResponse;
import dev.expo.api.v1.TensorAlpha;
import dev.expo.api.v1.TensorDtype;
import dev.expo.extrapolation.engine.TestStore;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.quarkus.grpc.GrpcClient;
import io.quarkus.test.common.QuarkusTestResource;
import io.quarkus.test.junit.QuarkusTest;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The service as its clients see it: streams, jobs and the status code of every kind of bad request. */
@QuarkusTest
@QuarkusTestResource(value = TestStoreResource.class, restrictToAnnotatedClass = true)
class ExtrapolationGrpcServiceTest {

    @GrpcClient("extrapolation")
    ExtrapolationServiceGrpc.ExtrapolationServiceBlockingStub client;

    private static ExtrapolationSpec.Builder spec(String base, String aligned) {
        return ExtrapolationSpec.newBuilder().setBaseModel(base).setAlignedModel(aligned);
    }

    private static ExtrapolationSpec uniform(String base, String aligned, double alpha) {
        return spec(base, aligned).setSchedule(AlphaSchedule.newBuilder().setAlpha(alpha)).build();
    }

    private List<ExtrapolateEvent> extrapolate(ExtrapolateRequest request) {
        List<ExtrapolateEvent> events = new ArrayList<>();
        client.withDeadlineAfter(60, TimeUnit.SECONDS).extrapolate(request).forEachRemaining(events::add);
        return events;
    }

    @Test
    void extrapolateStreamsProgressThenTheResultAndWritesTheGoldenModel() throws Exception {
        ExtrapolateRequest request = ExtrapolateRequest.newBuilder()
                .setSpec(uniform("sft", "dpo", 12)).setOutputModel("expo-uniform").build();
        List<ExtrapolateEvent> events = extrapolate(request);
        assertThat(events.getFirst().getProgress().getPhase()).isEqualTo(ExtrapolationPhase.EXTRAPOLATION_PHASE_QUEUED);
        assertThat(events.getLast().hasResult()).isTrue();
        assertThat(events).extracting(ExtrapolateEvent::getJobId).containsOnly(events.getFirst().getJobId());
        var result = events.getLast().getResult();
        assertThat(result.getOutputModel()).isEqualTo("expo-uniform");
        assertThat(result.getTensorCount()).isEqualTo(57);
        assertThat(result.getOutputDtype()).isEqualTo(TensorDtype.TENSOR_DTYPE_BF16);
        assertThat(Files.mismatch(TestStoreResource.root.resolve("expo-uniform/model.safetensors"),
                TestStore.fixture("tiny-llama-expo/uniform/model.safetensors"))).isEqualTo(-1L);

        ExtrapolationJob job = client.getJob(GetExtrapolationJobRequest.newBuilder()
                .setJobId(events.getLast().getJobId()).build());
        assertThat(job.getState()).isEqualTo(JobState.JOB_STATE_SUCCEEDED);
        assertThat(job.getRequest()).isEqualTo(request);
        assertThat(job.hasEndTime()).isTrue();
        ListExtrapolationJobsResponse succeeded = client.listJobs(ListExtrapolationJobsRequest.newBuilder()
                .setState(JobState.JOB_STATE_SUCCEEDED).build());
        assertThat(succeeded.getJobsList()).extracting(ExtrapolationJob::getJobId).contains(job.getJobId());
        // Cancelling a finished job changes nothing.
        assertThat(client.cancelJob(CancelExtrapolationJobRequest.newBuilder().setJobId(job.getJobId()).build())
                .getState()).isEqualTo(JobState.JOB_STATE_SUCCEEDED);
    }

    @Test
    void layerwiseFromYamlMatchesTheGolden() throws Exception {
        List<ExtrapolateEvent> events = extrapolate(ExtrapolateRequest.newBuilder().setOutputModel("expo-layerwise")
                .setSpec(spec("sft", "dpo-sharded").setScheduleYaml("layer_groups: [5, 10, 15]\n")).build());
        // The job reports the schedule the YAML parsed to.
        ExtrapolationJob job = client.getJob(GetExtrapolationJobRequest.newBuilder()
                .setJobId(events.getLast().getJobId()).build());
        assertThat(job.getRequest().getSpec().getSchedule().getLayerGroups().getAlphasList())
                .containsExactly(5.0, 10.0, 15.0);
        try (var out = dev.expo.checkpoint.Checkpoint.open(TestStoreResource.root.resolve("expo-layerwise"));
             var golden = dev.expo.checkpoint.Checkpoint.open(TestStore.fixture("tiny-llama-expo/layerwise"))) {
            assertThat(out.isSharded()).isTrue();
            for (var tensor : golden.tensors()) {
                assertThat(out.tensor(tensor.name()).bytes().mismatch(golden.tensor(tensor.name()).bytes()))
                        .isEqualTo(-1L);
            }
        }
    }

    @Test
    void planListsEveryTensorsAlpha() {
        PlanResponse plan = client.plan(PlanRequest.newBuilder().setSpec(spec("sft", "dpo").setSchedule(
                AlphaSchedule.newBuilder().setLayerGroups(LayerGroups.newBuilder().addAlphas(5).addAlphas(10)
                        .addAlphas(15)))).build());
        assertThat(plan.getNumLayers()).isEqualTo(6);
        assertThat(plan.getTensorsList()).hasSize(57);
        TensorAlpha q5 = plan.getTensorsList().stream()
                .filter(t -> t.getName().equals("model.layers.5.self_attn.q_proj.weight")).findFirst().orElseThrow();
        assertThat(q5.getAlpha()).isEqualTo(15);
        assertThat(q5.getLayer()).isEqualTo(5);
        TensorAlpha head = plan.getTensorsList().stream().filter(t -> t.getName().equals("lm_head.weight"))
                .findFirst().orElseThrow();
        assertThat(head.getAlpha()).isEqualTo(10);
        assertThat(head.hasLayer()).isFalse();
        assertThat(TestStore.stagingEntries(new dev.expo.common.store.ModelStore(TestStoreResource.root))).isZero();
    }

    @Test
    void everyKindOfBadRequestGetsItsStatusAndAMessage() {
        assertStatus(ExtrapolateRequest.newBuilder().setSpec(uniform("sft", "nope", 12)).setOutputModel("x"),
                Status.Code.NOT_FOUND, "\"nope\" is not in the model store");
        assertStatus(ExtrapolateRequest.newBuilder().setSpec(uniform("sft", "mistral", 12)).setOutputModel("x"),
                Status.Code.FAILED_PRECONDITION, "MistralForCausalLM");
        assertStatus(ExtrapolateRequest.newBuilder().setSpec(spec("sft", "dpo")).setOutputModel("x"),
                Status.Code.INVALID_ARGUMENT, "give an alpha schedule");
        assertStatus(ExtrapolateRequest.newBuilder().setSpec(spec("sft", "dpo").setScheduleYaml("alpah: 1"))
                .setOutputModel("x"), Status.Code.INVALID_ARGUMENT, "unknown key \"alpah\"");
        assertStatus(ExtrapolateRequest.newBuilder().setSpec(uniform("sft", "dpo", 12)).setOutputModel("../x"),
                Status.Code.INVALID_ARGUMENT, "output_model");
        assertStatus(ExtrapolateRequest.newBuilder().setSpec(uniform("sft", "dpo", 12)).setOutputModel("sft"),
                Status.Code.INVALID_ARGUMENT, "must differ");
        assertStatus(ExtrapolateRequest.newBuilder().setSpec(uniform("sft", "dpo", 12)).setOutputModel("mistral"),
                Status.Code.ALREADY_EXISTS, "already exists");
        assertThatThrownBy(() -> client.getJob(GetExtrapolationJobRequest.newBuilder().setJobId("nope").build()))
                .satisfies(e -> assertThat(((StatusRuntimeException) e).getStatus().getCode())
                        .isEqualTo(Status.Code.NOT_FOUND));
        assertThatThrownBy(() -> client.listJobs(ListExtrapolationJobsRequest.newBuilder().setPageToken("junk")
                .build())).satisfies(e -> assertThat(((StatusRuntimeException) e).getStatus().getCode())
                .isEqualTo(Status.Code.INVALID_ARGUMENT));
        // ... and the service still serves.
        assertThat(client.plan(PlanRequest.newBuilder().setSpec(uniform("sft", "dpo", 1)).build()).getTensorsCount())
                .isEqualTo(57);
    }

    private void assertStatus(ExtrapolateRequest.Builder request, Status.Code code, String message) {
        assertThatThrownBy(() -> {
            Iterator<ExtrapolateEvent> events = client.withDeadlineAfter(30, TimeUnit.SECONDS)
                    .extrapolate(request.build());
            events.forEachRemaining(e -> { });
        }).isInstanceOfSatisfying(StatusRuntimeException.class, e -> {
            assertThat(e.getStatus().getCode()).isEqualTo(code);
            assertThat(e.getStatus().getDescription()).contains(message);
        });
    }
}

package dev.expo.e2e;

import dev.expo.api.v1.AlphaSchedule;
import dev.expo.api.v1.ExtrapolateEvent;
import dev.expo.api.v1.ExtrapolateRequest;
import dev.expo.api.v1.ExtrapolationJob;
import dev.expo.api.v1.ExtrapolationPhase;
import dev.expo.api.v1.ExtrapolationServiceGrpc;
import dev.expo.api.v1.ExtrapolationSpec;
import dev.expo.api.v1.GetExtrapolationJobRequest;
import dev.expo.api.v1.JobState;
import dev.expo.benchmarks.SyntheticLlama;
import io.grpc.Context;
import io.grpc.ManagedChannel;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.reflection.v1.ServerReflectionGrpc;
import io.grpc.reflection.v1.ServerReflectionRequest;
import io.grpc.reflection.v1.ServerReflectionResponse;
import io.grpc.reflection.v1.ServiceResponse;
import io.grpc.stub.StreamObserver;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The checks every way of running the stack must pass (processes on loopback, docker compose), through the gateway.
 */
final class SystemChecks {

    static final List<String> HEALTH_NAMES = List.of("", "expo.v1.ExtrapolationService", "expo.v1.TrainingService",
            "expo.v1.InferenceService", "expo.v1.EvaluationService");

    private SystemChecks() {
    }

    static void assertEveryServiceServing(ManagedChannel gateway) {
        for (String service : HEALTH_NAMES) {
            assertThat(HealthGrpc.newBlockingStub(gateway).withDeadlineAfter(5, TimeUnit.SECONDS)
                    .check(HealthCheckRequest.newBuilder().setService(service).build()).getStatus())
                    .as("health of \"%s\"", service).isEqualTo(HealthCheckResponse.ServingStatus.SERVING);
        }
    }

    static void assertReflectionListsEveryPublicService(ManagedChannel gateway) throws Exception {
        CompletableFuture<List<String>> services = new CompletableFuture<>();
        StreamObserver<ServerReflectionRequest> requests = ServerReflectionGrpc.newStub(gateway)
                .serverReflectionInfo(new StreamObserver<>() {
                    @Override
                    public void onNext(ServerReflectionResponse response) {
                        services.complete(response.getListServicesResponse().getServiceList().stream()
                                .map(ServiceResponse::getName).toList());
                    }

                    @Override
                    public void onError(Throwable t) {
                        services.completeExceptionally(t);
                    }

                    @Override
                    public void onCompleted() {
                    }
                });
        requests.onNext(ServerReflectionRequest.newBuilder().setListServices("*").build());
        List<String> names = services.get(10, TimeUnit.SECONDS);
        requests.onCompleted();
        assertThat(names).contains("expo.v1.ExtrapolationService", "expo.v1.InferenceService",
                "expo.v1.TrainingService", "expo.v1.EvaluationService", "grpc.health.v1.Health");
    }

    /** A pair of ~90 MB models: big enough that a job is still writing when a test cancels it. */
    static void writeBigPair(Path store) throws IOException {
        SyntheticLlama.writePair(new SyntheticLlama.Shape(8000, 1024, 2816, 4), 60_000_000,
                store.resolve("big-sft"), store.resolve("big-dpo"));
    }

    /**
     * Starts Extrapolate through the gateway, cancels the call once the job is writing, and checks that the backend
     * saw it: the job ends CANCELLED before finishing, and neither the output nor a staging folder is left.
     */
    static void assertCancelledStreamCancelsTheJob(ManagedChannel gateway, Path store, String output)
            throws Exception {
        ExtrapolateRequest request = ExtrapolateRequest.newBuilder().setOutputModel(output)
                .setSpec(ExtrapolationSpec.newBuilder().setBaseModel("big-sft").setAlignedModel("big-dpo")
                        .setSchedule(AlphaSchedule.newBuilder().setAlpha(4))).build();
        Context.CancellableContext context = Context.current().withCancellation();
        String jobId;
        try {
            Iterator<ExtrapolateEvent> events = context.call(() -> ExtrapolationServiceGrpc.newBlockingStub(gateway)
                    .extrapolate(request));
            ExtrapolateEvent event;
            do {
                event = events.next();
            } while (event.getProgress().getPhase() != ExtrapolationPhase.EXTRAPOLATION_PHASE_WRITING);
            jobId = event.getJobId();
        } finally {
            context.cancel(null);   // the client goes away mid-write
        }
        ExtrapolationJob job = awaitFinal(gateway, jobId);
        assertThat(job.getState()).isEqualTo(JobState.JOB_STATE_CANCELLED);
        assertThat(job.getProgress().getBytesDone()).isLessThan(job.getProgress().getBytesTotal());
        assertThat(store.resolve(output)).doesNotExist();
        assertThat(stagingEntries(store)).isZero();
    }

    static ExtrapolationJob awaitFinal(ManagedChannel gateway, String jobId) throws InterruptedException {
        Instant deadline = Instant.now().plus(Duration.ofSeconds(30));
        while (true) {
            ExtrapolationJob job = ExtrapolationServiceGrpc.newBlockingStub(gateway)
                    .getJob(GetExtrapolationJobRequest.newBuilder().setJobId(jobId).build());
            if (job.getState() == JobState.JOB_STATE_SUCCEEDED || job.getState() == JobState.JOB_STATE_FAILED
                    || job.getState() == JobState.JOB_STATE_CANCELLED || Instant.now().isAfter(deadline)) {
                return job;
            }
            Thread.sleep(50);
        }
    }

    static long stagingEntries(Path store) throws IOException {
        Path staging = store.resolve(".staging");
        if (!Files.exists(staging)) {
            return 0;
        }
        try (var entries = Files.list(staging)) {
            return entries.count();
        }
    }
}

package dev.expo.extrapolation.grpc;

import dev.expo.api.v1.CancelExtrapolationJobRequest;
import dev.expo.api.v1.ExtrapolateEvent;
import dev.expo.api.v1.ExtrapolateRequest;
import dev.expo.api.v1.ExtrapolationService;
import dev.expo.api.v1.GetExtrapolationJobRequest;
import dev.expo.api.v1.JobState;
import dev.expo.api.v1.ListExtrapolationJobsRequest;
import dev.expo.api.v1.ListExtrapolationJobsResponse;
import dev.expo.api.v1.PlanRequest;
import dev.expo.api.v1.PlanResponse;
import dev.expo.common.ExpoException;
import dev.expo.extrapolation.engine.ExtrapolationPlan;
import dev.expo.extrapolation.engine.ExtrapolationProgress;
import dev.expo.extrapolation.engine.ExtrapolationSpec;
import dev.expo.extrapolation.engine.Planner;
import dev.expo.extrapolation.engine.jobs.ExtrapolationJob;
import dev.expo.extrapolation.engine.jobs.ExtrapolationJobs;
import dev.expo.extrapolation.engine.jobs.JobListener;
import dev.expo.service.ClientDisconnects;
import dev.expo.service.GrpcErrors;
import dev.expo.service.Pages;
import dev.expo.service.StopOnce;
import io.quarkus.grpc.GrpcService;
import io.smallrye.common.annotation.Blocking;
import io.smallrye.mutiny.Multi;
import io.smallrye.mutiny.Uni;
import io.smallrye.mutiny.infrastructure.Infrastructure;
import io.smallrye.mutiny.subscription.MultiEmitter;
import jakarta.inject.Inject;

import java.util.List;
import java.util.concurrent.Executor;

/**
 * expo.v1.ExtrapolationService: maps requests to engine calls and job events to the stream. A client that cancels
 * the Extrapolate stream (or whose deadline passes) cancels its job.
 */
@GrpcService
public class ExtrapolationGrpcService implements ExtrapolationService {

    @Inject
    ExtrapolationJobs jobs;

    @Inject
    Planner planner;

    @Override
    public Multi<ExtrapolateEvent> extrapolate(ExtrapolateRequest request) {
        // A client whose connection just closes is not a cancellation to Vert.x's gRPC server: watch for it here, on
        // the call's event loop (start runs on a worker). After a normal end the job is final and nothing happens.
        StopOnce stop = new StopOnce();
        ClientDisconnects.onClose(stop::fire);
        Executor writes = ClientDisconnects.writesWhileOpen();
        return Multi.createFrom().<ExtrapolateEvent>emitter(emitter -> start(request, emitter, writes, stop))
                .runSubscriptionOn(Infrastructure.getDefaultWorkerPool());
    }

    /** Starts the job; every event goes through {@code writes} (see ClientDisconnects#writesWhileOpen). */
    private void start(ExtrapolateRequest request, MultiEmitter<? super ExtrapolateEvent> emitter, Executor writes,
                       StopOnce stop) {
        JobListener listener = new JobListener() {
            @Override
            public void onProgress(ExtrapolationJob job, ExtrapolationProgress progress) {
                ExtrapolateEvent event = ExtrapolationProtoMapper.progressEvent(job, progress);
                writes.execute(() -> emitter.emit(event));
            }

            @Override
            public void onFinished(ExtrapolationJob job) {
                switch (job.state()) {
                    case SUCCEEDED -> {
                        ExtrapolateEvent result = ExtrapolationProtoMapper.resultEvent(job);
                        writes.execute(() -> {
                            emitter.emit(result);
                            emitter.complete();
                        });
                    }
                    case CANCELLED -> {
                        ExpoException cancelled = new ExpoException(ExpoException.Kind.CANCELLED,
                                "extrapolation job " + job.id() + " was cancelled; nothing was written");
                        writes.execute(() -> emitter.fail(cancelled));
                    }
                    default -> {
                        RuntimeException failure = job.failure().kind() == null
                                ? new IllegalStateException(job.failure().message())
                                : new ExpoException(job.failure().kind(), job.failure().message());
                        writes.execute(() -> emitter.fail(failure));
                    }
                }
            }
        };
        emitter.onTermination(stop::fire);
        try {
            ExtrapolationSpec spec = ExtrapolationProtoMapper.toSpec(request.getSpec());
            ExtrapolationJob job = jobs.submit(spec, request.getOutputModel(), request.getOverwrite(),
                    request.getMaxShardBytes(), request, listener);
            stop.attach(() -> {
                job.unfollow(listener);
                if (!job.state().isFinal()) {
                    jobs.cancel(job.id());
                }
            });
        } catch (RuntimeException e) {
            writes.execute(() -> emitter.fail(GrpcErrors.toStatusException(e)));
        }
    }

    @Override
    @Blocking
    public Uni<PlanResponse> plan(PlanRequest request) {
        try (ExtrapolationPlan plan = planner.plan(ExtrapolationProtoMapper.toSpec(request.getSpec()), 0)) {
            return Uni.createFrom().item(ExtrapolationProtoMapper.toProto(plan));
        }
    }

    @Override
    public Uni<dev.expo.api.v1.ExtrapolationJob> getJob(GetExtrapolationJobRequest request) {
        return Uni.createFrom().item(() -> ExtrapolationProtoMapper.toProto(jobs.get(request.getJobId())));
    }

    @Override
    public Uni<ListExtrapolationJobsResponse> listJobs(ListExtrapolationJobsRequest request) {
        return Uni.createFrom().item(() -> {
            var wanted = ExtrapolationProtoMapper.toEngine(request.getState());
            List<ExtrapolationJob> matching = jobs.list().stream()
                    .filter(j -> request.getState() == JobState.JOB_STATE_UNSPECIFIED || j.state() == wanted)
                    .toList();
            // Newest first; the page token is the position-independent key "<inverted time>/<id>".
            Pages.Page<ExtrapolationJob> page = Pages.page(matching, ExtrapolationGrpcService::newestFirstKey,
                    request.getPageSize(), request.getPageToken());
            ListExtrapolationJobsResponse.Builder response = ListExtrapolationJobsResponse.newBuilder()
                    .setNextPageToken(page.nextPageToken());
            page.items().forEach(j -> response.addJobs(ExtrapolationProtoMapper.toProto(j)));
            return response.build();
        });
    }

    private static String newestFirstKey(ExtrapolationJob job) {
        long inverted = Long.MAX_VALUE - job.createTime().toEpochMilli() * 1_000_000L
                - job.createTime().getNano() % 1_000_000;
        return String.format("%020d/%s", inverted, job.id());
    }

    @Override
    public Uni<dev.expo.api.v1.ExtrapolationJob> cancelJob(CancelExtrapolationJobRequest request) {
        return Uni.createFrom().item(() -> ExtrapolationProtoMapper.toProto(jobs.cancel(request.getJobId())));
    }
}

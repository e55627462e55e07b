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
import dev.expo.extrapolation.engine.Planner;
import dev.expo.extrapolation.engine.jobs.ExtrapolationJob;
import dev.expo.extrapolation.engine.jobs.ExtrapolationJobs;
import dev.expo.extrapolation.engine.jobs.JobListener;
import dev.expo.service.Pages;
import dev.expo.service.ServerStream;
import io.quarkus.grpc.GrpcService;
import io.quarkus.runtime.StartupEvent;
import jakarta.enterprise.event.Observes;
import org.jboss.logging.Logger;
import io.smallrye.common.annotation.Blocking;
import io.smallrye.mutiny.Multi;
import io.smallrye.mutiny.Uni;
import jakarta.inject.Inject;

import java.util.List;

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

    /** Jobs a killed process left unfinished show as failed (their output was never published). */
    void restoreInterrupted(@Observes StartupEvent started) {
        int interrupted = jobs.restoreInterrupted(ExtrapolationProtoMapper::requestFromJournal);
        if (interrupted > 0) {
            Logger.getLogger(ExtrapolationGrpcService.class).warnf("%d extrapolation job(s) were unfinished when "
                    + "the service last stopped: they show as failed", interrupted);
        }
    }

    @Override
    public Multi<ExtrapolateEvent> extrapolate(ExtrapolateRequest request) {
        return ServerStream.open(stream -> start(request, stream));
    }

    /** Starts the job; its events become the stream's, and a client that leaves cancels it. */
    private void start(ExtrapolateRequest request, ServerStream<ExtrapolateEvent> stream) {
        JobListener listener = new JobListener() {
            @Override
            public void onProgress(ExtrapolationJob job, ExtrapolationProgress progress) {
                stream.emit(ExtrapolationProtoMapper.progressEvent(job, progress));
            }

            @Override
            public void onFinished(ExtrapolationJob job) {
                switch (job.state()) {
                    case SUCCEEDED -> stream.complete(ExtrapolationProtoMapper.resultEvent(job));
                    case CANCELLED -> stream.fail(new ExpoException(ExpoException.Kind.CANCELLED,
                            "extrapolation job " + job.id() + " was cancelled; nothing was written"));
                    default -> stream.fail(job.failure().kind() == null
                            ? new IllegalStateException(job.failure().message())
                            : new ExpoException(job.failure().kind(), job.failure().message()));
                }
            }
        };
        ExtrapolationJob job = jobs.submit(ExtrapolationProtoMapper.toRequest(request), listener,
                request.toByteArray());
        stream.onStop(() -> {
            job.unfollow(listener);
            if (!job.state().isFinal()) {
                jobs.cancel(job.id());
            }
        });
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
        return Pages.newestFirstKey(job.createTime(), job.id());
    }

    @Override
    public Uni<dev.expo.api.v1.ExtrapolationJob> cancelJob(CancelExtrapolationJobRequest request) {
        return Uni.createFrom().item(() -> ExtrapolationProtoMapper.toProto(jobs.cancel(request.getJobId())));
    }
}

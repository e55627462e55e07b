package dev.expo.gateway.grpc;

import dev.expo.api.v1.CancelEvaluationRunRequest;
import dev.expo.api.v1.EvaluationEvent;
import dev.expo.api.v1.EvaluationRun;
import dev.expo.api.v1.EvaluationService;
import dev.expo.api.v1.GetEvaluationRunRequest;
import dev.expo.api.v1.JobState;
import dev.expo.api.v1.ListEvaluationRunsRequest;
import dev.expo.api.v1.ListEvaluationRunsResponse;
import dev.expo.api.v1.RunEvaluationRequest;
import dev.expo.api.v1.WatchEvaluationRunRequest;
import dev.expo.evaluation.engine.ScoredOutput;
import dev.expo.evaluation.engine.runs.EvaluationRuns;
import dev.expo.gateway.access.Caller;
import dev.expo.gateway.access.Role;
import dev.expo.gateway.evaluation.EvaluationProtoMapper;
import dev.expo.service.Pages;
import dev.expo.service.ServerStream;
import io.quarkus.grpc.GrpcService;
import io.smallrye.common.annotation.Blocking;
import io.smallrye.mutiny.Multi;
import io.smallrye.mutiny.Uni;
import jakarta.inject.Inject;

import java.util.Comparator;
import java.util.List;

/**
 * The evaluation harness, owned by the gateway: a thin layer over the evaluation engine's durable runs. A client
 * leaving a run's stream does not stop the run (CancelRun does): runs outlive their watchers.
 */
@GrpcService
public class EvaluationGrpcService implements EvaluationService {

    @Inject
    EvaluationRuns runs;

    @Override
    public Multi<EvaluationEvent> runEvaluation(RunEvaluationRequest request) {
        // Evaluating is a client's right, but a variant that is extrapolated for the run writes a model to the store,
        // which only admins may.
        Caller caller = Caller.current();
        for (var variant : request.getVariantsList()) {
            if (variant.hasExtrapolation() && caller != null && !caller.role().allows(Role.ADMIN)) {
                return Multi.createFrom().failure(io.grpc.Status.PERMISSION_DENIED.withDescription("variant "
                        + variant.getName() + " is extrapolated for the run, which writes a model: that needs the "
                        + "admin role; the " + caller.describe() + " (evaluate existing models instead)")
                        .asRuntimeException());
            }
        }
        // Checking the request asks the backends (the reward model's kind, each spec's dry run): off the event loop.
        return ServerStream.open(stream -> follow(runs.submit(EvaluationProtoMapper.toRequest(request)), stream));
    }

    @Override
    public Multi<EvaluationEvent> watchRun(WatchEvaluationRunRequest request) {
        return ServerStream.open(stream -> follow(runs.get(request.getRunId()), stream));
    }

    private static void follow(dev.expo.evaluation.engine.runs.EvaluationRun run, ServerStream<EvaluationEvent> stream) {
        stream.emit(EvaluationProtoMapper.runEvent(run));
        dev.expo.evaluation.engine.runs.EvaluationRun.Listener listener =
                new dev.expo.evaluation.engine.runs.EvaluationRun.Listener() {
                    @Override
                    public void onOutput(dev.expo.evaluation.engine.runs.EvaluationRun r, ScoredOutput output) {
                        stream.emit(EvaluationEvent.newBuilder().setRunId(r.id())
                                .setOutput(EvaluationProtoMapper.toProto(output)).build());
                    }

                    @Override
                    public void onState(dev.expo.evaluation.engine.runs.EvaluationRun r) {
                        if (r.state().isFinal()) {
                            if (r.summary() != null) {
                                stream.emit(EvaluationEvent.newBuilder().setRunId(r.id())
                                        .setSummary(EvaluationProtoMapper.toProto(r.summary())).build());
                            }
                            stream.complete(EvaluationProtoMapper.runEvent(r));
                        } else {
                            stream.emit(EvaluationEvent.newBuilder().setRunId(r.id())
                                    .setProgress(EvaluationProtoMapper.progress(r)).build());
                        }
                    }
                };
        run.follow(listener);
        stream.onStop(() -> run.unfollow(listener));
    }

    @Override
    @Blocking
    public Uni<EvaluationRun> getRun(GetEvaluationRunRequest request) {
        return Uni.createFrom().item(() -> EvaluationProtoMapper.toProto(runs.get(request.getRunId())));
    }

    @Override
    @Blocking
    public Uni<ListEvaluationRunsResponse> listRuns(ListEvaluationRunsRequest request) {
        return Uni.createFrom().item(() -> {
            List<dev.expo.evaluation.engine.runs.EvaluationRun> matching = runs.list().stream()
                    .filter(r -> request.getState() == JobState.JOB_STATE_UNSPECIFIED
                            || EvaluationProtoMapper.toProto(r.state()) == request.getState())
                    .sorted(Comparator.comparing(EvaluationGrpcService::newestFirstKey))
                    .toList();
            Pages.Page<dev.expo.evaluation.engine.runs.EvaluationRun> page = Pages.page(matching,
                    EvaluationGrpcService::newestFirstKey, request.getPageSize(), request.getPageToken());
            ListEvaluationRunsResponse.Builder response = ListEvaluationRunsResponse.newBuilder()
                    .setNextPageToken(page.nextPageToken());
            page.items().forEach(r -> response.addRuns(EvaluationProtoMapper.toProto(r)));
            return response.build();
        });
    }

    @Override
    @Blocking
    public Uni<EvaluationRun> cancelRun(CancelEvaluationRunRequest request) {
        return Uni.createFrom().item(() -> EvaluationProtoMapper.toProto(runs.cancel(request.getRunId())));
    }

    private static String newestFirstKey(dev.expo.evaluation.engine.runs.EvaluationRun run) {
        return Pages.newestFirstKey(run.createTime(), run.id());
    }
}

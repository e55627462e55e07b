package dev.expo.gateway.grpc;

import dev.expo.api.v1.EvaluationEvent;
import dev.expo.api.v1.EvaluationService;
import dev.expo.api.v1.RunEvaluationRequest;
import dev.expo.service.NotBuilt;
import io.quarkus.grpc.GrpcService;
import io.smallrye.mutiny.Multi;

/** The evaluation harness, owned by the gateway. Not built yet: UNIMPLEMENTED, never fake scores. */
@GrpcService
public class EvaluationGrpcService implements EvaluationService {

    @Override
    public Multi<EvaluationEvent> runEvaluation(RunEvaluationRequest request) {
        return Multi.createFrom().failure(NotBuilt.rpc("EvaluationService.RunEvaluation"));
    }
}

package dev.expo.e2e;

import dev.expo.api.v1.EvaluationServiceGrpc;
import dev.expo.api.v1.RunEvaluationRequest;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthGrpc;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The gateway as the one public entry: health of every service, reflection, the evaluation service's checks. */
@ExtendWith(StackExtension.class)
class GatewayIT {

    @Test
    void healthReportsEveryServiceServing(Stack stack) {
        SystemChecks.assertEveryServiceServing(stack.gateway());
        assertThatThrownBy(() -> HealthGrpc.newBlockingStub(stack.gateway())
                .check(HealthCheckRequest.newBuilder().setService("nope").build()))
                .satisfies(e -> assertThat(((StatusRuntimeException) e).getStatus().getCode())
                        .isEqualTo(Status.Code.NOT_FOUND));
    }

    @Test
    void reflectionOnTheGatewayListsEveryPublicService(Stack stack) throws Exception {
        SystemChecks.assertReflectionListsEveryPublicService(stack.gateway());
    }

    @Test
    void anEmptyEvaluationRequestIsRefusedThroughTheGateway(Stack stack) {
        assertThatThrownBy(() -> EvaluationServiceGrpc.newBlockingStub(stack.gateway())
                .runEvaluation(RunEvaluationRequest.getDefaultInstance()).hasNext())
                .isInstanceOfSatisfying(StatusRuntimeException.class, e -> {
                    assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
                    assertThat(e.getStatus().getDescription()).contains("prompts");
                });
    }

    @Test
    void everyServiceExposesPrometheusMetrics(Stack stack) throws Exception {
        for (String service : Stack.SERVICES) {
            assertThat(stack.metrics(service)).as(service).contains("jvm_memory_used_bytes");   // fails unless 200
        }
    }
}

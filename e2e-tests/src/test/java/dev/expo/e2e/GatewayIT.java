package dev.expo.e2e;

import dev.expo.api.v1.EvaluationServiceGrpc;
import dev.expo.api.v1.RunEvaluationRequest;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthGrpc;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.io.IOException;
import java.net.ConnectException;
import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.NetworkInterface;
import java.net.Socket;
import java.net.SocketException;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The gateway as the one public entry: health of every service, reflection, the evaluation service's checks, and
 * backends that take no connection from beyond loopback.
 */
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

    /**
     * A backend port, reached at one of this machine's own non-loopback addresses (as another host on its network
     * would reach it), refuses the connection; the gateway's port at the same address accepts it.
     */
    @Test
    void onlyTheGatewayTakesConnectionsFromBeyondLoopback(Stack stack) throws Exception {
        InetAddress outside = nonLoopbackAddress();
        assumeTrue(outside != null, "this machine has no non-loopback address to test the backends' binding from");
        for (String backend : List.of("extrapolation-service", "training-service", "inference-service")) {
            assertThatThrownBy(() -> connect(outside, stack.port(backend))).as(backend + " at " + outside)
                    .isInstanceOf(ConnectException.class);
        }
        connect(outside, stack.port("gateway"));
    }

    private static void connect(InetAddress address, int port) throws IOException {
        try (Socket socket = new Socket()) {
            socket.connect(new InetSocketAddress(address, port), 2000);
        }
    }

    private static InetAddress nonLoopbackAddress() throws SocketException {
        return NetworkInterface.networkInterfaces().filter(nic -> {
            try {
                return nic.isUp() && !nic.isLoopback();
            } catch (SocketException e) {
                return false;
            }
        }).flatMap(NetworkInterface::inetAddresses).filter(a -> a instanceof Inet4Address && !a.isLoopbackAddress()
                && !a.isLinkLocalAddress()).findFirst().orElse(null);
    }
}

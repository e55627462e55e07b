package dev.expo.gateway.routing;

import io.grpc.CallOptions;
import io.grpc.ManagedChannel;
import io.grpc.MethodDescriptor;
import io.grpc.Server;
import io.grpc.ServerServiceDefinition;
import io.grpc.stub.ClientCalls;
import io.grpc.stub.ServerCalls;
import io.grpc.netty.NettyServerBuilder;
import io.grpc.protobuf.services.HealthStatusManager;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** A backend over several replicas: rotation, health checking, model affinity, a replica going away. */
class BackendChannelTest {

    private final List<Server> servers = new ArrayList<>();
    private final List<HealthStatusManager> health = new ArrayList<>();
    private ManagedChannel channel;

    /**
     * A test-only method that answers with the replica's name. (Not an expo.v1 service: a stub implementation of one
     * in the test classes would be taken by Quarkus for the gateway's own in the other tests' app.)
     */
    private static final MethodDescriptor.Marshaller<byte[]> BYTES = new MethodDescriptor.Marshaller<>() {
        @Override
        public java.io.InputStream stream(byte[] value) {
            return new java.io.ByteArrayInputStream(value);
        }

        @Override
        public byte[] parse(java.io.InputStream stream) {
            try {
                return stream.readAllBytes();
            } catch (java.io.IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        }
    };

    private static final MethodDescriptor<byte[], byte[]> NAME = MethodDescriptor.<byte[], byte[]>newBuilder()
            .setType(MethodDescriptor.MethodType.UNARY).setFullMethodName("test.Replica/Name")
            .setRequestMarshaller(BYTES).setResponseMarshaller(BYTES).build();

    /** A replica that answers {@link #NAME} with its own name, and the standard health service. */
    private int replica(String name) throws Exception {
        HealthStatusManager status = new HealthStatusManager();
        Server server = NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
                .addService(status.getHealthService())
                .addService(ServerServiceDefinition.builder("test.Replica").addMethod(NAME,
                        ServerCalls.asyncUnaryCall((request, observer) -> {
                            observer.onNext(name.getBytes(java.nio.charset.StandardCharsets.UTF_8));
                            observer.onCompleted();
                        })).build()).build().start();
        servers.add(server);
        health.add(status);
        return server.getPort();
    }

    private Map<String, Integer> calls(int n) {
        return calls(n, null);
    }

    /** {@code n} calls one after another, for {@code model} (null: for none); how many each replica answered. */
    private Map<String, Integer> calls(int n, String model) {
        Map<String, Integer> byReplica = new HashMap<>();
        for (int i = 0; i < n; i++) {
            CallOptions options = CallOptions.DEFAULT.withDeadlineAfter(5, TimeUnit.SECONDS);
            if (model != null) {
                options = options.withOption(ReplicaLoadBalancer.MODEL, model);
            }
            String name = new String(ClientCalls.blockingUnaryCall(channel, NAME, options, new byte[0]),
                    java.nio.charset.StandardCharsets.UTF_8);
            byReplica.merge(name, 1, Integer::sum);
        }
        return byReplica;
    }

    @AfterEach
    void stop() {
        if (channel != null) {
            channel.shutdownNow();
        }
        servers.forEach(Server::shutdownNow);
    }

    @Test
    void targetsNameOneReplicaAListOrADnsName() {
        assertThat(BackendChannel.target("127.0.0.1:50054")).isEqualTo("static:///127.0.0.1:50054");
        assertThat(BackendChannel.target("127.0.0.1:1, 127.0.0.1:2")).isEqualTo("static:///127.0.0.1:1,127.0.0.1:2");
        assertThat(BackendChannel.target("dns:///inference-headless:50054")).isEqualTo(
                "dns:///inference-headless:50054");
        for (String bad : List.of("", "inference", "host:0", "host:port", "127.0.0.1:1,", "a:70000")) {
            assertThatThrownBy(() -> BackendChannel.target(bad)).as(bad).isInstanceOf(IllegalArgumentException.class);
        }
    }

    @Test
    void callsGoRoundRobinOverTheConnectedReplicas() throws Exception {
        int a = replica("a");
        int b = replica("b");
        channel = BackendChannel.open("127.0.0.1:" + a + ",127.0.0.1:" + b);
        calls(4);                                                    // until both connections are up
        assertThat(calls(20)).containsEntry("a", 10).containsEntry("b", 10);

        // A replica that goes away: the calls after it are served by the other.
        servers.getFirst().shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        Thread.sleep(300);
        assertThat(calls(10)).containsOnlyKeys("b");
    }

    /** Replicas "a" and "b" behind the channel, both connected. */
    private void twoReplicasConnected() throws Exception {
        replica("a");
        replica("b");
        channel = BackendChannel.open("127.0.0.1:" + servers.get(0).getPort() + ",127.0.0.1:"
                + servers.get(1).getPort());
        calls(4);
    }

    @Test
    void aReplicaReportingNotServingGetsNoCallsUntilItServesAgain() throws Exception {
        twoReplicasConnected();
        health.getFirst().setStatus("", io.grpc.health.v1.HealthCheckResponse.ServingStatus.NOT_SERVING);
        Thread.sleep(300);                                            // the Watch stream brings it
        assertThat(calls(10)).containsOnlyKeys("b");
        health.getFirst().setStatus("", io.grpc.health.v1.HealthCheckResponse.ServingStatus.SERVING);
        Thread.sleep(300);
        assertThat(calls(10)).containsEntry("a", 5).containsEntry("b", 5);
    }

    @Test
    void noServingReplicaFailsCallsAtOnceWithWhatEachIs() throws Exception {
        replica("a");
        channel = BackendChannel.open("127.0.0.1:" + servers.getFirst().getPort() + ",127.0.0.1:1");
        calls(2);
        health.getFirst().setStatus("", io.grpc.health.v1.HealthCheckResponse.ServingStatus.NOT_SERVING);
        Thread.sleep(300);
        assertThatThrownBy(() -> calls(1)).isInstanceOf(io.grpc.StatusRuntimeException.class)
                .hasMessageContaining("UNAVAILABLE").hasMessageContaining("not serving");
    }

    @Test
    void callsForAModelStayOnTheReplicaThatHasItAndOthersStillRotate() throws Exception {
        twoReplicasConnected();
        Map<String, Integer> first = calls(10, "m1");
        assertThat(first).as("one replica has m1").hasSize(1).containsValue(10);
        Map<String, Integer> second = calls(10, "m2");
        assertThat(second).hasSize(1).containsValue(10);
        assertThat(calls(10)).as("calls for no model").containsEntry("a", 5).containsEntry("b", 5);
        assertThat(calls(10, "m1")).isEqualTo(first);

        // the replica with m1 goes away: m1's calls go to the other, which has it from then on
        String holder = first.keySet().iterator().next();
        servers.get(holder.equals("a") ? 0 : 1).shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        Thread.sleep(300);
        String other = holder.equals("a") ? "b" : "a";
        assertThat(calls(5, "m1")).containsOnlyKeys(other);
    }

    @Test
    void aDnsNameIsResolvedAgainAfterTheChannelGoesIdle() throws Exception {
        int a = replica("a");
        channel = BackendChannel.open("dns:///localhost:" + a);
        assertThat(BackendChannel.isDns("dns:///localhost:" + a)).isTrue();
        assertThat(calls(3)).containsEntry("a", 3);
        channel.enterIdle();                                 // the balancer starts afresh from the name
        assertThat(calls(3)).containsEntry("a", 3);
    }
}

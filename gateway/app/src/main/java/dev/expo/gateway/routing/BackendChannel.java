package dev.expo.gateway.routing;

import io.grpc.LoadBalancerRegistry;
import io.grpc.ManagedChannel;
import io.grpc.NameResolverRegistry;
import io.grpc.netty.NettyChannelBuilder;

import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * The gateway's channel to one backend, over however many replicas it has. The target is
 * <ul>
 *   <li>{@code HOST:PORT}, one replica;</li>
 *   <li>{@code HOST:PORT,HOST:PORT,...}, a fixed list (replicas on one machine, as {@code bin/expo-stack up
 *   --inference-replicas N} runs them);</li>
 *   <li>{@code dns:///NAME:PORT}, every address the name resolves to: a Kubernetes headless Service. The name is
 *   looked up again when a connection fails and every {@code expo.backends.reresolve-every}, so replicas that come
 *   and go are followed.</li>
 * </ul>
 * Replicas are balanced by {@link ReplicaLoadBalancer} (health-aware, preferring a replica that has the call's
 * model: {@link ModelAffinity}); a call a draining replica refuses is retried on another ({@link #serviceConfig}).
 * Keepalive pings find a replica that stopped answering (a hung process, a lost node) within 40 s.
 */
final class BackendChannel {

    static {
        NameResolverRegistry.getDefaultRegistry().register(new StaticAddressResolver());
        LoadBalancerRegistry.getDefaultRegistry().register(new ReplicaLoadBalancer.Provider());
    }

    /**
     * gRPC's service config for a backend with replicas: the replica policy, and UNAVAILABLE retried (on another
     * replica) for the calls that are safe to repeat, Generate included (gRPC retries a stream only before its first
     * response). A replica that is draining refuses new calls with UNAVAILABLE (service-support's
     * DrainingInterceptor) the moment it starts to, before its NOT_SERVING has reached the gateway.
     */
    static Map<String, ?> serviceConfig(int busyAt, long reresolveSeconds) {
        return Map.of(
                "loadBalancingConfig", List.of(Map.of(ReplicaLoadBalancer.POLICY, Map.of(
                        "busyAt", (double) busyAt, "reresolveSeconds", (double) reresolveSeconds))),
                "methodConfig", List.of(Map.of(
                        "name", List.of("Generate", "Score", "Reward", "EmbedImage", "ListModels", "LoadModel")
                                .stream().map(m -> Map.of("service", "expo.v1.InferenceService", "method", m))
                                .toList(),
                        "retryPolicy", Map.of("maxAttempts", 3.0, "initialBackoff", "0.05s", "maxBackoff", "0.5s",
                                "backoffMultiplier", 2.0, "retryableStatusCodes", List.of("UNAVAILABLE")))));
    }

    private BackendChannel() {
    }

    /** Whether a configured address is a name for the DNS to resolve (rather than fixed addresses). */
    static boolean isDns(String configured) {
        return configured.strip().startsWith("dns:");
    }

    /** The grpc-java target for a configured backend address (see the class comment). */
    static String target(String configured) {
        String address = configured.strip();
        if (address.isEmpty()) {
            throw new IllegalArgumentException("a backend address is empty");
        }
        if (address.contains("://") || isDns(address)) {
            return address;
        }
        StaticAddressResolver.parse(address);                                     // fails early on a bad entry
        return StaticAddressResolver.SCHEME + ":///" + address.replace(" ", "");
    }

    /** How replicas are balanced: {@code expo.backends.busy-at} and {@code expo.backends.reresolve-every}. */
    record Balancing(int busyAt, long reresolveSeconds) {
        static final Balancing DEFAULT = new Balancing(1, 30);
    }

    static ManagedChannel open(String configured) {
        return builder(configured, Balancing.DEFAULT).build();
    }

    /**
     * On Vert.x's own event loops, as Quarkus' gRPC clients are (no threads of grpc-java's own); the forwarder hands
     * each response to its client's event loop (ClientDisconnects.writesWhileOpen), where a client's reset and the
     * writes after it are ordered.
     */
    static ManagedChannel open(String configured, Balancing balancing, io.vertx.core.Vertx vertx) {
        NettyChannelBuilder builder = builder(configured, balancing);
        if (!vertx.isNativeTransportEnabled()) {
            builder.eventLoopGroup(vertx.nettyEventLoopGroup()).channelType(io.netty.channel.socket.nio
                    .NioSocketChannel.class);
        }
        return builder.directExecutor().build();
    }

    /** Whether the address names more than one replica, or a name that may resolve to several. */
    static boolean isReplicated(String configured) {
        return isDns(configured) || configured.contains(",");
    }

    private static NettyChannelBuilder builder(String configured, Balancing balancing) {
        NettyChannelBuilder builder = NettyChannelBuilder.forTarget(target(configured))
                .usePlaintext()                                       // backends are on loopback or a private network
                .maxInboundMessageSize(64 << 20);
        if (!isReplicated(configured)) {
            // One replica, nothing to balance: the channel Quarkus' own gRPC client makes (pick_first, no pings).
            return builder;
        }
        return builder.defaultServiceConfig(serviceConfig(balancing.busyAt(), balancing.reresolveSeconds()))
                .enableRetry()
                .keepAliveTime(30, TimeUnit.SECONDS)
                .keepAliveTimeout(10, TimeUnit.SECONDS)
                .keepAliveWithoutCalls(true);
    }
}

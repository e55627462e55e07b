package dev.expo.gateway.routing;

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
 *   <li>{@code dns:///NAME:PORT}, every address the name resolves to: a Kubernetes headless Service. gRPC re-resolves
 *   when a connection fails, and {@link Backends} has the channel look the name up again every
 *   {@code expo.backends.reresolve-every}, so replicas that come up are followed too.</li>
 * </ul>
 * Calls are spread by gRPC's own {@code round_robin} over the replicas that are connected; a call a draining replica
 * refuses is retried on another ({@link #SERVICE_CONFIG}). Keepalive pings find a replica that stopped answering (a hung process, a lost node) within 40 s.
 */
final class BackendChannel {

    static {
        NameResolverRegistry.getDefaultRegistry().register(new StaticAddressResolver());
    }

    /**
     * gRPC's service config for a backend with replicas: round robin over the connected ones, and UNAVAILABLE
     * retried (on the next replica) for the calls that are safe to repeat, Generate included (gRPC retries a stream
     * only before its first response). A replica that is draining refuses new calls with UNAVAILABLE
     * (service-support's DrainingInterceptor), so they land on another. (Client-side health checking would keep them off it in the first place, but it needs grpc-services on
     * the gateway's class path, and with it there ServingIT's clients resetting streams as their first token is
     * written met GOAWAYs in about half of the e2e runs; see the scale-out issue's notes.)
     */
    static final Map<String, ?> SERVICE_CONFIG = Map.of(
            "loadBalancingConfig", List.of(Map.of("round_robin", Map.of())),
            "methodConfig", List.of(Map.of(
                    "name", List.of("Generate", "Score", "Reward", "EmbedImage", "ListModels", "LoadModel").stream()
                            .map(m -> Map.of("service", "expo.v1.InferenceService", "method", m)).toList(),
                    "retryPolicy", Map.of("maxAttempts", 3.0, "initialBackoff", "0.05s", "maxBackoff", "0.5s",
                            "backoffMultiplier", 2.0, "retryableStatusCodes", List.of("UNAVAILABLE")))));

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

    static ManagedChannel open(String configured) {
        return builder(configured).build();
    }

    /**
     * On Vert.x's own event loops, as Quarkus' gRPC clients are: the backend's responses are then written to the
     * gateway's client from a Vert.x event loop, and a client resetting its stream while a response is written to it
     * stays a per-stream event (written from a foreign thread, the same race could make Netty fail the client's whole
     * connection).
     */
    static ManagedChannel open(String configured, io.vertx.core.Vertx vertx) {
        NettyChannelBuilder builder = builder(configured);
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

    private static NettyChannelBuilder builder(String configured) {
        NettyChannelBuilder builder = NettyChannelBuilder.forTarget(target(configured))
                .usePlaintext()                                       // backends are on loopback or a private network
                .maxInboundMessageSize(64 << 20);
        if (!isReplicated(configured)) {
            // One replica, nothing to balance: the channel Quarkus' own gRPC client makes (pick_first, no pings).
            return builder;
        }
        return builder.defaultServiceConfig(SERVICE_CONFIG).enableRetry()
                .keepAliveTime(30, TimeUnit.SECONDS)
                .keepAliveTimeout(10, TimeUnit.SECONDS)
                .keepAliveWithoutCalls(true);
    }
}

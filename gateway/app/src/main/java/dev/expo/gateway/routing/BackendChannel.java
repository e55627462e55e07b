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
 * Calls are spread by gRPC's own {@code round_robin} over the replicas that are connected and report SERVING on the
 * standard health service (client-side health checking: a replica that says NOT_SERVING, as one does while it drains,
 * gets no new calls). Keepalive pings find a replica that stopped answering (a hung process, a lost node) in seconds.
 */
final class BackendChannel {

    static {
        NameResolverRegistry.getDefaultRegistry().register(new StaticAddressResolver());
    }

    /** gRPC's service config for every backend: round robin over the healthy replicas. */
    static final Map<String, ?> SERVICE_CONFIG = Map.of(
            "loadBalancingConfig", List.of(Map.of("round_robin", Map.of())),
            "healthCheckConfig", Map.of("serviceName", ""));

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
        if (address.contains("://") || address.startsWith("dns:")) {
            return address;
        }
        StaticAddressResolver.parse(address);                                     // fails early on a bad entry
        return StaticAddressResolver.SCHEME + ":///" + address.replace(" ", "");
    }

    static ManagedChannel open(String configured) {
        return NettyChannelBuilder.forTarget(target(configured))
                .usePlaintext()                                       // backends are on loopback or a private network
                .defaultServiceConfig(SERVICE_CONFIG)
                .maxInboundMessageSize(64 << 20)
                .keepAliveTime(10, TimeUnit.SECONDS)
                .keepAliveTimeout(5, TimeUnit.SECONDS)
                .keepAliveWithoutCalls(true)
                .build();
    }
}

package dev.expo.gateway.routing;

import dev.expo.common.HostPort;
import io.grpc.EquivalentAddressGroup;
import io.grpc.NameResolver;
import io.grpc.NameResolverProvider;
import io.grpc.Status;

import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.URI;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;

/**
 * gRPC name resolution for a fixed list of replicas, {@code static:///HOST:PORT,HOST:PORT,...}: each address is one
 * endpoint for the channel's load balancer ({@link ReplicaLoadBalancer}). grpc-java resolves {@code dns:///} names
 * itself but has no scheme for a literal list, which is what replicas on one machine (different ports of loopback)
 * need. This only names the addresses; choosing among them, reconnecting and health checking are the balancer's.
 */
final class StaticAddressResolver extends NameResolverProvider {

    static final String SCHEME = "static";

    /** The replicas of a {@code HOST:PORT[,HOST:PORT...]} list; a malformed entry is an IllegalArgumentException. */
    static List<InetSocketAddress> parse(String list) {
        List<InetSocketAddress> addresses = new ArrayList<>();
        for (String entry : list.split(",", -1)) {
            HostPort replica;
            try {
                replica = HostPort.parse(entry);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("a backend address must be HOST:PORT, not \"" + entry.strip()
                        + "\"", e);
            }
            addresses.add(InetSocketAddress.createUnresolved(replica.host(), replica.port()));
        }
        return addresses;
    }

    @Override
    protected boolean isAvailable() {
        return true;
    }

    @Override
    protected int priority() {
        return 5;
    }

    @Override
    public String getDefaultScheme() {
        return SCHEME;
    }

    @Override
    public Collection<Class<? extends SocketAddress>> getProducedSocketAddressTypes() {
        return List.of(InetSocketAddress.class);
    }

    @Override
    public NameResolver newNameResolver(URI target, NameResolver.Args args) {
        if (!SCHEME.equals(target.getScheme())) {
            return null;
        }
        List<InetSocketAddress> replicas = parse(target.getPath().substring(1));
        return new NameResolver() {
            @Override
            public String getServiceAuthority() {
                return replicas.getFirst().getHostString();
            }

            @Override
            public void start(Listener2 listener) {
                List<EquivalentAddressGroup> groups = new ArrayList<>();
                for (InetSocketAddress replica : replicas) {
                    // Resolved at each start (a channel re-resolves after failures), so a host name may move.
                    InetSocketAddress resolved = new InetSocketAddress(replica.getHostString(), replica.getPort());
                    if (resolved.isUnresolved()) {
                        listener.onError(Status.UNAVAILABLE.withDescription("cannot resolve " + replica));
                        return;
                    }
                    groups.add(new EquivalentAddressGroup(resolved));
                }
                listener.onResult(ResolutionResult.newBuilder().setAddresses(groups).build());
            }

            @Override
            public void shutdown() {
            }
        };
    }
}

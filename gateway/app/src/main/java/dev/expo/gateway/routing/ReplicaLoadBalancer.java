package dev.expo.gateway.routing;

import grpc.health.v1.HealthGrpc;
import grpc.health.v1.HealthOuterClass.HealthCheckRequest;
import grpc.health.v1.HealthOuterClass.HealthCheckResponse;
import io.grpc.CallOptions;
import io.grpc.ClientCall;
import io.grpc.ClientStreamTracer;
import io.grpc.ConnectivityState;
import io.grpc.ConnectivityStateInfo;
import io.grpc.EquivalentAddressGroup;
import io.grpc.LoadBalancer;
import io.grpc.LoadBalancerProvider;
import io.grpc.Metadata;
import io.grpc.NameResolver;
import io.grpc.Status;
import io.grpc.SynchronizationContext;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * gRPC's client-side load balancing over a backend's replicas, with the choice made by {@link ModelAffinity}: a
 * policy plugged into grpc-java's balancer API (as its own {@code round_robin} is), not a proxy of ours. It keeps one
 * connection per replica, watches each replica's {@code grpc.health.v1} status over it (a replica reporting
 * NOT_SERVING, e.g. draining, gets no new calls), counts each replica's calls in flight, and asks the name resolver
 * again every {@code reresolveSeconds} and when a connection fails, so replicas that come and go are followed.
 * The call's model comes as the call option {@link #MODEL}.
 */
final class ReplicaLoadBalancer extends LoadBalancer {

    static final String POLICY = "expo_replicas";
    /** The model a call is for (the forwarder reads it from the request), or absent. */
    static final CallOptions.Key<String> MODEL = CallOptions.Key.create("expo-model");

    private static final long HEALTH_RETRY_MS = 1_000;

    /** One replica's connection, its state and health; touched only in the channel's synchronization context. */
    private final class Tracked {
        final Subchannel subchannel;
        final ModelAffinity.Replica replica;
        final ClientStreamTracer.Factory tracer;
        ConnectivityState state = ConnectivityState.IDLE;
        /** null until its health service has answered since it connected. */
        Boolean serving;
        ClientCall<HealthCheckRequest, HealthCheckResponse> watch;
        /** Failed to connect since it was last READY: its reconnecting counts as failed, not as pending. */
        boolean failing;
        boolean removed;

        Tracked(EquivalentAddressGroup addresses) {
            subchannel = helper.createSubchannel(CreateSubchannelArgs.newBuilder().setAddresses(addresses).build());
            replica = new ModelAffinity.Replica(addresses.getAddresses().toString());
            tracer = inFlightCounter(replica);
        }
    }

    private final Helper helper;
    private final SynchronizationContext sync;
    private final Map<List<java.net.SocketAddress>, Tracked> replicas = new LinkedHashMap<>();
    private ModelAffinity policy;
    private SynchronizationContext.ScheduledHandle reresolve;

    ReplicaLoadBalancer(Helper helper) {
        this.helper = helper;
        this.sync = helper.getSynchronizationContext();
    }

    @Override
    public Status acceptResolvedAddresses(ResolvedAddresses resolved) {
        BackendChannel.Balancing config = resolved.getLoadBalancingPolicyConfig() instanceof BackendChannel.Balancing b
                ? b : BackendChannel.Balancing.DEFAULT;
        if (policy == null) {
            policy = new ModelAffinity(config.busyAt());
        }
        if (reresolve == null && config.reresolveSeconds() > 0) {
            reresolve = sync.scheduleWithFixedDelay(helper::refreshNameResolution, config.reresolveSeconds(),
                    config.reresolveSeconds(), TimeUnit.SECONDS, helper.getScheduledExecutorService());
        }
        List<EquivalentAddressGroup> groups = resolved.getAddresses();
        if (groups.isEmpty()) {
            Status none = Status.UNAVAILABLE.withDescription("the name resolved to no replica address ("
                    + resolved.getAttributes() + ")");
            handleNameResolutionError(none);
            return none;
        }
        Map<List<java.net.SocketAddress>, EquivalentAddressGroup> wanted = new LinkedHashMap<>();
        for (EquivalentAddressGroup group : groups) {
            wanted.putIfAbsent(group.getAddresses(), new EquivalentAddressGroup(group.getAddresses()));
        }
        for (var it = replicas.entrySet().iterator(); it.hasNext(); ) {
            var entry = it.next();
            if (!wanted.containsKey(entry.getKey())) {
                it.remove();
                retire(entry.getValue());
            }
        }
        wanted.forEach((key, group) -> {
            if (!replicas.containsKey(key)) {
                Tracked tracked = new Tracked(group);
                replicas.put(key, tracked);
                tracked.subchannel.start(state -> onState(tracked, state));
                tracked.subchannel.requestConnection();
            }
        });
        publish();
        return Status.OK;
    }

    @Override
    public void handleNameResolutionError(Status error) {
        if (replicas.isEmpty()) {
            helper.updateBalancingState(ConnectivityState.TRANSIENT_FAILURE,
                    new FixedPicker(PickResult.withError(error)));
        }
    }

    @Override
    public void requestConnection() {
        replicas.values().forEach(t -> t.subchannel.requestConnection());
    }

    @Override
    public void shutdown() {
        if (reresolve != null) {
            reresolve.cancel();
        }
        replicas.values().forEach(this::retire);
        replicas.clear();
    }

    private void retire(Tracked tracked) {
        tracked.removed = true;
        stopWatching(tracked);
        tracked.subchannel.shutdown();
    }

    private void onState(Tracked tracked, ConnectivityStateInfo info) {
        if (tracked.removed) {
            return;
        }
        ConnectivityState was = tracked.state;
        tracked.state = info.getState();
        if (tracked.state == ConnectivityState.READY) {
            tracked.failing = false;
        } else if (tracked.state == ConnectivityState.TRANSIENT_FAILURE) {
            tracked.failing = true;
        }
        if (tracked.state == ConnectivityState.READY && was != ConnectivityState.READY) {
            tracked.serving = null;
            watchHealth(tracked);
        } else if (tracked.state != ConnectivityState.READY) {
            stopWatching(tracked);
            tracked.serving = null;
            tracked.replica.models.clear();     // a replica that comes back may be a new process: nothing loaded
        }
        if (tracked.state == ConnectivityState.IDLE) {
            tracked.subchannel.requestConnection();
        } else if (tracked.state == ConnectivityState.TRANSIENT_FAILURE) {
            helper.refreshNameResolution();
        }
        publish();
    }

    /** A {@code grpc.health.v1.Health/Watch} stream on the replica's connection, restarted while connected. */
    private void watchHealth(Tracked tracked) {
        ClientCall<HealthCheckRequest, HealthCheckResponse> call = tracked.subchannel.asChannel()
                .newCall(HealthGrpc.getWatchMethod(), CallOptions.DEFAULT);
        tracked.watch = call;
        call.start(new ClientCall.Listener<>() {
            @Override
            public void onMessage(HealthCheckResponse response) {
                sync.execute(() -> {
                    if (tracked.watch == call) {
                        tracked.serving = response.getStatus() == HealthCheckResponse.ServingStatus.SERVING;
                        publish();
                    }
                });
                call.request(1);
            }

            @Override
            public void onClose(Status status, Metadata trailers) {
                sync.execute(() -> {
                    if (tracked.watch != call) {
                        return;
                    }
                    tracked.watch = null;
                    if (status.getCode() == Status.Code.UNIMPLEMENTED) {
                        tracked.serving = true;         // no health service to ask: connected is all we know
                    } else {
                        tracked.serving = false;
                        sync.schedule(() -> {
                            if (!tracked.removed && tracked.watch == null
                                    && tracked.state == ConnectivityState.READY) {
                                watchHealth(tracked);
                            }
                        }, HEALTH_RETRY_MS, TimeUnit.MILLISECONDS, helper.getScheduledExecutorService());
                    }
                    publish();
                });
            }
        }, new Metadata());
        call.sendMessage(HealthCheckRequest.newBuilder().setService("").build());
        call.halfClose();
        call.request(1);
    }

    private static void stopWatching(Tracked tracked) {
        if (tracked.watch != null) {
            ClientCall<?, ?> watch = tracked.watch;
            tracked.watch = null;
            watch.cancel("the replica's connection is not ready", null);
        }
    }

    /** The picker for the replicas as they are now. */
    private void publish() {
        List<Tracked> usable = new ArrayList<>();
        boolean pending = false;
        for (Tracked tracked : replicas.values()) {
            if (tracked.state == ConnectivityState.READY && Boolean.TRUE.equals(tracked.serving)) {
                usable.add(tracked);
            } else if (((tracked.state == ConnectivityState.CONNECTING || tracked.state == ConnectivityState.IDLE)
                    && !tracked.failing) || (tracked.state == ConnectivityState.READY && tracked.serving == null)) {
                pending = true;
            }
        }
        if (!usable.isEmpty()) {
            helper.updateBalancingState(ConnectivityState.READY, new AffinityPicker(policy, usable));
        } else if (pending) {
            helper.updateBalancingState(ConnectivityState.CONNECTING, new FixedPicker(PickResult.withNoResult()));
        } else {
            List<String> states = replicas.values().stream().map(t -> t.replica.name + " "
                    + (t.state == ConnectivityState.READY ? "not serving" : t.failing ? "not reachable"
                    : t.state.toString())).toList();
            helper.updateBalancingState(ConnectivityState.TRANSIENT_FAILURE, new FixedPicker(PickResult.withError(
                    Status.UNAVAILABLE.withDescription("no replica can take calls: " + String.join(", ", states)))));
        }
    }

    /** Counts a replica's calls (each retry attempt a call) from the stream's start to its close. */
    private static ClientStreamTracer.Factory inFlightCounter(ModelAffinity.Replica replica) {
        return new ClientStreamTracer.Factory() {
            @Override
            public ClientStreamTracer newClientStreamTracer(ClientStreamTracer.StreamInfo info, Metadata headers) {
                replica.inFlight.incrementAndGet();
                AtomicBoolean closed = new AtomicBoolean();
                String model = info.getCallOptions().getOption(MODEL);
                return new ClientStreamTracer() {
                    @Override
                    public void streamClosed(Status status) {
                        if (closed.compareAndSet(false, true)) {
                            replica.inFlight.decrementAndGet();
                            if (model != null && (status.getCode() == Status.Code.NOT_FOUND
                                    || status.getCode() == Status.Code.INVALID_ARGUMENT)) {
                                replica.models.remove(model);     // not a model it has (no such model, or bad)
                            }
                        }
                    }
                };
            }
        };
    }

    private static final class AffinityPicker extends SubchannelPicker {
        private final ModelAffinity policy;
        private final List<Tracked> usable;
        private final List<ModelAffinity.Replica> replicas;

        AffinityPicker(ModelAffinity policy, List<Tracked> usable) {
            this.policy = policy;
            this.usable = List.copyOf(usable);
            this.replicas = usable.stream().map(t -> t.replica).toList();
        }

        @Override
        public PickResult pickSubchannel(PickSubchannelArgs args) {
            ModelAffinity.Replica chosen = policy.choose(replicas, args.getCallOptions().getOption(MODEL));
            Tracked tracked = usable.get(replicas.indexOf(chosen));
            return PickResult.withSubchannel(tracked.subchannel, tracked.tracer);
        }
    }

    private static final class FixedPicker extends SubchannelPicker {
        private final PickResult result;

        FixedPicker(PickResult result) {
            this.result = result;
        }

        @Override
        public PickResult pickSubchannel(PickSubchannelArgs args) {
            return result;
        }
    }

    /** Registered under {@link #POLICY}; its config: {@code {"busyAt": 1, "reresolveSeconds": 30}}. */
    static final class Provider extends LoadBalancerProvider {
        @Override
        public boolean isAvailable() {
            return true;
        }

        @Override
        public int getPriority() {
            return 5;
        }

        @Override
        public String getPolicyName() {
            return POLICY;
        }

        @Override
        public LoadBalancer newLoadBalancer(Helper helper) {
            return new ReplicaLoadBalancer(helper);
        }

        @Override
        public NameResolver.ConfigOrError parseLoadBalancingPolicyConfig(Map<String, ?> raw) {
            try {
                int busyAt = number(raw, "busyAt", BackendChannel.Balancing.DEFAULT.busyAt());
                long reresolve = number(raw, "reresolveSeconds",
                        (int) BackendChannel.Balancing.DEFAULT.reresolveSeconds());
                if (busyAt < 1 || reresolve < 0) {
                    throw new IllegalArgumentException("busyAt must be >= 1 and reresolveSeconds >= 0: " + raw);
                }
                return NameResolver.ConfigOrError.fromConfig(new BackendChannel.Balancing(busyAt, reresolve));
            } catch (RuntimeException e) {
                return NameResolver.ConfigOrError.fromError(Status.INVALID_ARGUMENT.withDescription(
                        POLICY + " config " + raw + ": " + e.getMessage()));
            }
        }

        private static int number(Map<String, ?> raw, String key, int otherwise) {
            Object value = raw.get(key);
            return value == null ? otherwise : ((Number) value).intValue();
        }
    }
}

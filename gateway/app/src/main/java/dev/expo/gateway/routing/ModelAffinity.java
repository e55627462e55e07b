package dev.expo.gateway.routing;

import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Predicate;

/**
 * Which replica takes a call; the policy itself, in plain Java ({@link ReplicaLoadBalancer} applies it to gRPC's
 * connections). A call for a model goes to the least busy replica that already has it, as long as that one has fewer
 * than {@code busyAt} calls in flight; beyond that it spills to a less busy replica without it, which loads it and
 * from then on shares that model's calls. A call for no model goes to the least busy replica. Ties rotate, so idle
 * replicas share calls round robin. "Has it" is what the gateway knows: a replica has a model once a call for it was
 * sent there, and forgets all when its connection is lost (it may have restarted).
 *
 * <p>With {@code busyAt} 1 (the gateway's default) that is the least busy replica, ties going to one that has the
 * model: an idle replica with the model is always preferred, and a busy model spreads over the replicas at once.
 * A higher {@code busyAt} keeps each model on fewer replicas (less memory, fewer loads) while its replica can batch
 * more sequences at little cost (up to its batch size), at some cost in latency.
 */
final class ModelAffinity {

    /** One replica as the policy sees it: its calls in flight and the models it has been sent. */
    static final class Replica {
        final String name;
        final AtomicInteger inFlight = new AtomicInteger();
        final Set<String> models = ConcurrentHashMap.newKeySet();

        Replica(String name) {
            this.name = name;
        }

        @Override
        public String toString() {
            return name + " (" + inFlight.get() + " in flight, models " + models + ")";
        }
    }

    /** More than a replica's memory holds; past it the replica's set starts afresh. */
    static final int MAX_MODELS_PER_REPLICA = 256;

    private final int busyAt;
    private final AtomicInteger rotation = new AtomicInteger();

    ModelAffinity(int busyAt) {
        if (busyAt < 1) {
            throw new IllegalArgumentException("busyAt must be >= 1, not " + busyAt);
        }
        this.busyAt = busyAt;
    }

    /** @param usable the replicas that may take calls now (connected and serving); not empty */
    Replica choose(List<Replica> usable, String model) {
        int start = Math.floorMod(rotation.getAndIncrement(), usable.size());
        if (model == null || model.isEmpty()) {
            return leastBusy(usable, start, r -> true);
        }
        Replica holder = leastBusy(usable, start, r -> r.models.contains(model));
        Replica chosen = holder;
        if (holder == null || holder.inFlight.get() >= busyAt) {
            Replica other = leastBusy(usable, start, r -> !r.models.contains(model));
            if (holder == null || (other != null && other.inFlight.get() < holder.inFlight.get())) {
                chosen = other;
            }
        }
        if (chosen.models.size() >= MAX_MODELS_PER_REPLICA && !chosen.models.contains(model)) {
            chosen.models.clear();                   // bounded whatever names callers send; it relearns
        }
        chosen.models.add(model);
        return chosen;
    }

    private static Replica leastBusy(List<Replica> replicas, int start, Predicate<Replica> eligible) {
        Replica best = null;
        int bestInFlight = Integer.MAX_VALUE;
        for (int i = 0; i < replicas.size(); i++) {
            Replica replica = replicas.get((start + i) % replicas.size());
            int inFlight = replica.inFlight.get();
            if (eligible.test(replica) && inFlight < bestInFlight) {
                best = replica;
                bestInFlight = inFlight;
            }
        }
        return best;
    }
}

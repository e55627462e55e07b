package dev.expo.gateway.routing;

import org.junit.jupiter.api.Test;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class ModelAffinityTest {

    private final ModelAffinity.Replica a = new ModelAffinity.Replica("a");
    private final ModelAffinity.Replica b = new ModelAffinity.Replica("b");
    private final ModelAffinity.Replica c = new ModelAffinity.Replica("c");
    private final List<ModelAffinity.Replica> all = List.of(a, b, c);

    /** {@code n} calls that stay in flight, as long streams do. */
    private Map<String, Integer> streams(ModelAffinity policy, int n, String model) {
        Map<String, Integer> byReplica = new HashMap<>();
        for (int i = 0; i < n; i++) {
            ModelAffinity.Replica chosen = policy.choose(all, model);
            chosen.inFlight.incrementAndGet();
            byReplica.merge(chosen.name, 1, Integer::sum);
        }
        return byReplica;
    }

    @Test
    void idleReplicasShareCallsForNoModelInTurn() {
        ModelAffinity policy = new ModelAffinity(4);
        Map<String, Integer> byReplica = new HashMap<>();
        for (int i = 0; i < 9; i++) {
            byReplica.merge(policy.choose(all, null).name, 1, Integer::sum);   // each ends before the next
        }
        assertThat(byReplica).containsEntry("a", 3).containsEntry("b", 3).containsEntry("c", 3);
    }

    @Test
    void aModelsCallsStayWhereItIsUntilThatReplicaIsBusyThenSpill() {
        ModelAffinity policy = new ModelAffinity(4);
        Map<String, Integer> first = streams(policy, 4, "m");
        assertThat(first).hasSize(1).containsValue(4);
        ModelAffinity.Replica holder = all.stream().filter(r -> r.inFlight.get() == 4).findFirst().orElseThrow();
        // the holder is busy: the next goes to a replica without the model, which has it from then on
        ModelAffinity.Replica spilled = policy.choose(all, "m");
        assertThat(spilled).isNotSameAs(holder);
        assertThat(spilled.models).contains("m");
        spilled.inFlight.incrementAndGet();
        // now two have it: calls go to the less busy of them, never to the third
        Map<String, Integer> next = streams(policy, 3, "m");
        assertThat(next).containsOnlyKeys(spilled.name);
        assertThat(all.stream().filter(r -> r.models.contains("m")).count()).isEqualTo(2);
    }

    @Test
    void aBusyHolderKeepsTheCallWhenEveryOtherReplicaIsBusierStill() {
        ModelAffinity policy = new ModelAffinity(2);
        a.models.add("m");
        a.inFlight.set(5);
        b.inFlight.set(7);
        c.inFlight.set(9);
        assertThat(policy.choose(all, "m")).isSameAs(a);
        assertThat(b.models).isEmpty();
    }

    @Test
    void differentModelsGoToDifferentIdleReplicas() {
        ModelAffinity policy = new ModelAffinity(16);
        ModelAffinity.Replica x = policy.choose(all, "x");
        ModelAffinity.Replica y = policy.choose(all, "y");
        ModelAffinity.Replica z = policy.choose(all, "z");
        assertThat(List.of(x, y, z)).containsExactlyInAnyOrder(a, b, c);
        assertThat(policy.choose(all, "y")).isSameAs(y);
    }

    @Test
    void whatAReplicaIsKnownToHaveStaysBoundedWhateverNamesCome() {
        ModelAffinity policy = new ModelAffinity(1);
        for (int i = 0; i < 10 * ModelAffinity.MAX_MODELS_PER_REPLICA; i++) {
            policy.choose(all, "no-such-model-" + i);
        }
        assertThat(all).allSatisfy(r -> assertThat(r.models.size()).isLessThanOrEqualTo(
                ModelAffinity.MAX_MODELS_PER_REPLICA));
    }

    @Test
    void busyAtMustBePositive() {
        assertThatThrownBy(() -> new ModelAffinity(0)).isInstanceOf(IllegalArgumentException.class);
    }
}

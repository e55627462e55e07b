package dev.expo.gateway.ab;

import dev.expo.common.ExpoException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

class SplitsTest {

    @TempDir
    Path dir;

    private final Set<String> models = Set.of("sft", "dpo", "expo-3");

    private Splits splits() {
        return new Splits(dir.resolve("splits.json"), Clock.systemUTC(), models::contains);
    }

    @Test
    void sharesFollowTheWeightsOverManyUsersAndEachUserIsSticky() {
        Splits splits = splits();
        splits.put("chat", List.of(new Splits.Arm("a", "sft", null, null, 1),
                new Splits.Arm("b", "dpo", null, null, 2), new Splits.Arm("c", "expo-3", "lora", 1.5, 1)));
        Random random = new Random(42);
        Map<String, Integer> counts = new HashMap<>();
        int users = 20_000;
        for (int i = 0; i < users; i++) {
            String user = "user-" + random.nextLong();
            String arm = splits.route("chat", user).orElseThrow().name();
            counts.merge(arm, 1, Integer::sum);
            // The same user meets the same arm, every time.
            assertThat(splits.route("chat", user).orElseThrow().name()).isEqualTo(arm);
        }
        // Binomial standard error at 20000 draws is under 0.4%; 1.5% is about four of them.
        assertThat(counts.get("a") / (double) users).isCloseTo(0.25, within(0.015));
        assertThat(counts.get("b") / (double) users).isCloseTo(0.50, within(0.015));
        assertThat(counts.get("c") / (double) users).isCloseTo(0.25, within(0.015));
        assertThat(splits.get("chat").orElseThrow().counts().stream().mapToLong(Splits.Counts::requests).sum())
                .isEqualTo(2L * users);
    }

    @Test
    void splitsAndCountsSurviveARestartAndCountsRestartWhenArmsChange() {
        Splits splits = splits();
        List<Splits.Arm> arms = List.of(new Splits.Arm("a", "sft", null, null, 1),
                new Splits.Arm("b", "dpo", null, null, 1));
        splits.put("chat", arms);
        Splits.Arm arm = splits.route("chat", "u1").orElseThrow();
        splits.ended("chat", arm.name(), true, 7, Duration.ofMillis(500));
        splits.flush();

        Splits again = splits();
        Splits.Counts counts = again.get("chat").orElseThrow().counts().stream()
                .filter(c -> c.arm().equals(arm.name())).findFirst().orElseThrow();
        assertThat(counts).extracting(Splits.Counts::requests, Splits.Counts::errors, Splits.Counts::generatedTokens)
                .containsExactly(1L, 1L, 7L);
        assertThat(counts.meanLatencySeconds()).isEqualTo(0.5);
        assertThat(again.route("chat", "u1").orElseThrow()).isEqualTo(arm);

        again.put("chat", arms);     // the same arms: the counts go on
        assertThat(again.get("chat").orElseThrow().counts().stream().mapToLong(Splits.Counts::requests).sum())
                .isEqualTo(2);
        again.put("chat", List.of(new Splits.Arm("a", "sft", null, null, 3), arms.get(1)));
        assertThat(again.get("chat").orElseThrow().counts().stream().mapToLong(Splits.Counts::requests).sum())
                .isZero();
        assertThat(again.route("sft", "u1")).isEmpty();       // a model is no split
    }

    @Test
    void badSplitsAreRefusedWithTheFieldNamed() {
        Splits splits = splits();
        Splits.Arm ok = new Splits.Arm("a", "sft", null, null, 1);
        assertThatThrownBy(() -> splits.put("sft", List.of(ok))).isInstanceOf(ExpoException.class)
                .hasMessageContaining("is a model in the store");
        assertThatThrownBy(() -> splits.put("chat", List.of())).hasMessageContaining("at least one arm");
        assertThatThrownBy(() -> splits.put("chat", List.of(ok, ok))).hasMessageContaining("twice");
        assertThatThrownBy(() -> splits.put("chat", List.of(new Splits.Arm("a", "nope", null, null, 1))))
                .isInstanceOfSatisfying(ExpoException.class, e -> assertThat(e.kind())
                        .isEqualTo(ExpoException.Kind.NOT_FOUND));
        assertThatThrownBy(() -> splits.put("chat", List.of(new Splits.Arm("a", "sft", null, null, 0))))
                .hasMessageContaining("weight");
        assertThatThrownBy(() -> splits.put("../x", List.of(ok))).hasMessageContaining("name");
        splits.put("chat", List.of(ok));
        assertThatThrownBy(() -> splits.put("other", List.of(new Splits.Arm("a", "chat", null, null, 1))))
                .hasMessageContaining("is a split");
        assertThatThrownBy(() -> splits.delete("nope")).isInstanceOfSatisfying(ExpoException.class,
                e -> assertThat(e.kind()).isEqualTo(ExpoException.Kind.NOT_FOUND));
    }
}

package dev.expo.gateway.ab;

import dev.expo.common.ExpoException;
import dev.expo.gateway.StateFile;

import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Predicate;
import java.util.regex.Pattern;

/**
 * Online A/B splits: a virtual model name whose calls are shared among arms by weight. The arm is a pure function of
 * the split's name and the caller's sticky id (its key, or the user it names): SHA-256 of both, read as a fraction of
 * [0, 1), against the arms' cumulative shares. So one user meets one arm for as long as the arms stay the same,
 * across gateway restarts and replicas, with no table of assignments to keep. The splits and their counts live in
 * one JSON file, rewritten whole (a temporary file renamed over it).
 */
public final class Splits {

    private static final Pattern NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._/-]{0,127}");

    /** What serves an arm: a model, optionally with an adapter at a scale (null = the adapter's own). */
    public record Arm(String name, String model, String adapter, Double adapterScale, double weight) {
    }

    /** An arm's traffic since its split was last put. */
    public record Counts(String arm, long requests, long errors, long generatedTokens, long completed,
                         long latencyNanos) {
        public double meanLatencySeconds() {
            return completed == 0 ? 0 : latencyNanos / 1e9 / completed;
        }
    }

    public record Split(String name, List<Arm> arms, Instant updatedAt, List<Counts> counts) {
    }

    /** As the file keeps it. */
    private record Stored(String name, List<Arm> arms, Instant updatedAt, List<Counts> counts) {
    }

    private final Path file;
    private final Clock clock;
    private final Predicate<String> isModel;
    private final Map<String, State> byName = new LinkedHashMap<>();
    private volatile boolean dirty;

    /**
     * @param isModel whether a name is a model in the store (a split may not hide one)
     */
    public Splits(Path file, Clock clock, Predicate<String> isModel) {
        this.file = file;
        this.clock = clock;
        this.isModel = isModel;
        if (Files.exists(file)) {
            for (Stored stored : StateFile.read(file, Stored[].class, "A/B splits")) {
                byName.put(stored.name(), new State(stored.name(), stored.arms(), stored.updatedAt(),
                        stored.counts()));
            }
        }
    }

    /** Creates or replaces a split; counts restart from zero unless the arms are the same as before. */
    public synchronized Split put(String name, List<Arm> arms) {
        if (name == null || !NAME.matcher(name).matches() || name.contains("..")) {
            throw ExpoException.invalidArgument("name", name, "must be a model-like name (letters, digits, '.', '_', "
                    + "'-', '/')");
        }
        if (isModel.test(name)) {
            throw ExpoException.failedPrecondition("\"" + name + "\" is a model in the store; a split needs a name "
                    + "no model has");
        }
        if (arms.isEmpty()) {
            throw ExpoException.invalidArgument("arms: a split needs at least one arm");
        }
        Set<String> seen = new HashSet<>();
        for (Arm arm : arms) {
            if (arm.name() == null || !arm.name().matches("[A-Za-z0-9._-]{1,64}")) {
                throw ExpoException.invalidArgument("arms.name", arm.name(), "must be 1 to 64 letters, digits, '.', "
                        + "'_' or '-'");
            }
            if (!seen.add(arm.name())) {
                throw ExpoException.invalidArgument("arms.name", arm.name(), "is given twice");
            }
            if (arm.model() == null || arm.model().isBlank()) {
                throw ExpoException.invalidArgument("arms[" + arm.name() + "].model: every arm names a model");
            }
            if (byName.containsKey(arm.model()) || arm.model().equals(name)) {
                throw ExpoException.invalidArgument("arms[" + arm.name() + "].model", arm.model(), "is a split; an "
                        + "arm names a model in the store");
            }
            if (!isModel.test(arm.model())) {
                throw ExpoException.notFound("arm " + arm.name() + ": no model \"" + arm.model() + "\" in the store");
            }
            if (!(arm.weight() > 0) || !Double.isFinite(arm.weight())) {
                throw ExpoException.invalidArgument("arms[" + arm.name() + "].weight", arm.weight(), "must be a "
                        + "positive number");
            }
            if (arm.adapterScale() != null && !Double.isFinite(arm.adapterScale())) {
                throw ExpoException.invalidArgument("arms[" + arm.name() + "].adapter_scale", arm.adapterScale(),
                        "must be finite");
            }
        }
        State old = byName.get(name);
        List<Counts> counts = old != null && old.arms.equals(arms) ? old.snapshot() : List.of();
        State state = new State(name, List.copyOf(arms), clock.instant(), counts);
        byName.put(name, state);
        save();
        return state.split();
    }

    public synchronized Optional<Split> get(String name) {
        State state = byName.get(name);
        return state == null ? Optional.empty() : Optional.of(state.split());
    }

    public synchronized boolean isSplit(String name) {
        return byName.containsKey(name);
    }

    public synchronized List<Split> list() {
        return byName.values().stream().map(State::split).toList();
    }

    public synchronized Split delete(String name) {
        State state = byName.remove(name);
        if (state == null) {
            throw ExpoException.notFound("no A/B split is named \"" + name + "\" (bin/expo ab list shows them)");
        }
        save();
        return state.split();
    }

    /** The arm that serves {@code stickyId} on split {@code name}, if it is a split; the call is counted on it. */
    public Optional<Arm> route(String name, String stickyId) {
        State state;
        synchronized (this) {
            state = byName.get(name);
        }
        if (state == null) {
            return Optional.empty();
        }
        Arm arm = choose(state.arms, name, stickyId);
        state.counter(arm.name()).requests.incrementAndGet();
        dirty = true;
        return Optional.of(arm);
    }

    /** A routed call ended. */
    public void ended(String split, String arm, boolean error, long generatedTokens, Duration latency) {
        State state;
        synchronized (this) {
            state = byName.get(split);
        }
        if (state == null || !state.counters.containsKey(arm)) {
            return;     // the split was replaced or deleted meanwhile: its counts restarted
        }
        Counter counter = state.counter(arm);
        if (error) {
            counter.errors.incrementAndGet();
        }
        counter.tokens.addAndGet(generatedTokens);
        counter.completed.incrementAndGet();
        counter.latencyNanos.addAndGet(latency.toNanos());
        dirty = true;
    }

    /** Writes the counts if they changed since the last write (the app calls it every few seconds and at the end). */
    public synchronized void flush() {
        if (dirty) {
            save();
        }
    }

    /** The arm for a sticky id: the same inputs always give the same arm. */
    static Arm choose(List<Arm> arms, String split, String stickyId) {
        double total = 0;
        for (Arm arm : arms) {
            total += arm.weight();
        }
        double u = fraction(split + "\u0000" + stickyId) * total;
        double cumulative = 0;
        for (Arm arm : arms) {
            cumulative += arm.weight();
            if (u < cumulative) {
                return arm;
            }
        }
        return arms.getLast();
    }

    /** The first 53 bits of SHA-256(text), as a fraction of [0, 1). */
    static double fraction(String text) {
        try {
            byte[] digest = MessageDigest.getInstance("SHA-256").digest(text.getBytes(StandardCharsets.UTF_8));
            return (ByteBuffer.wrap(digest).getLong() >>> 11) * 0x1.0p-53;
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private void save() {
        dirty = false;
        List<Stored> stored = new ArrayList<>();
        for (State state : byName.values()) {
            stored.add(new Stored(state.name, state.arms, state.updatedAt, state.snapshot()));
        }
        try {
            StateFile.write(file, stored, "A/B splits");
        } catch (UncheckedIOException e) {
            dirty = true;
            throw e;
        }
    }

    private static final class Counter {
        final AtomicLong requests = new AtomicLong();
        final AtomicLong errors = new AtomicLong();
        final AtomicLong tokens = new AtomicLong();
        final AtomicLong completed = new AtomicLong();
        final AtomicLong latencyNanos = new AtomicLong();
    }

    private static final class State {
        final String name;
        final List<Arm> arms;
        final Instant updatedAt;
        final Map<String, Counter> counters = new LinkedHashMap<>();

        State(String name, List<Arm> arms, Instant updatedAt, List<Counts> counts) {
            this.name = name;
            this.arms = arms;
            this.updatedAt = updatedAt;
            for (Arm arm : arms) {
                counters.put(arm.name(), new Counter());
            }
            if (counts != null) {
                for (Counts c : counts) {
                    Counter counter = counters.get(c.arm());
                    if (counter != null) {
                        counter.requests.set(c.requests());
                        counter.errors.set(c.errors());
                        counter.tokens.set(c.generatedTokens());
                        counter.completed.set(c.completed());
                        counter.latencyNanos.set(c.latencyNanos());
                    }
                }
            }
        }

        Counter counter(String arm) {
            return counters.get(arm);
        }

        List<Counts> snapshot() {
            List<Counts> out = new ArrayList<>();
            counters.forEach((arm, c) -> out.add(new Counts(arm, c.requests.get(), c.errors.get(), c.tokens.get(),
                    c.completed.get(), c.latencyNanos.get())));
            return out;
        }

        Split split() {
            return new Split(name, arms, updatedAt, snapshot());
        }
    }
}

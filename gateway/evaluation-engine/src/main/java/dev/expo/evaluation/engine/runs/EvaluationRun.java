package dev.expo.evaluation.engine.runs;

import dev.expo.common.ExpoException;
import dev.expo.evaluation.engine.EvaluationSummary;
import dev.expo.evaluation.engine.ScoredOutput;

import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * One evaluation run: its request, state, the outputs scored so far (in the order they were scored) and, once it
 * succeeded, its summary. Changes and listener calls happen under the run's lock, so a listener sees events in order
 * and none twice.
 */
public final class EvaluationRun {

    public enum State {
        QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED;

        public boolean isFinal() {
            return this == SUCCEEDED || this == FAILED || this == CANCELLED;
        }
    }

    public record Failure(ExpoException.Kind kind, String message) {
    }

    /** Sees a run's progress; a final state is the last call. */
    public interface Listener {
        void onOutput(EvaluationRun run, ScoredOutput output);

        /** The state, the phase (what the run is doing now) or the summary changed. */
        void onState(EvaluationRun run);
    }

    private final String id;
    private final EvaluationRequest request;
    private final Path dir;
    private final Instant createTime;
    private final List<ScoredOutput> outputs = new ArrayList<>();
    private final Set<String> done = new HashSet<>();
    private final List<Listener> listeners = new CopyOnWriteArrayList<>();
    private State state;
    private String phase = "";
    private Instant startTime;
    private Instant endTime;
    private Failure failure;
    private EvaluationSummary summary;
    private volatile boolean cancelRequested;

    EvaluationRun(String id, EvaluationRequest request, Path dir, Instant createTime, State state) {
        this.id = id;
        this.request = request;
        this.dir = dir;
        this.createTime = createTime;
        this.state = state;
    }

    public String id() {
        return id;
    }

    public EvaluationRequest request() {
        return request;
    }

    /** The run's folder: request, state, outputs as they come, and at the end the files users read. */
    public Path dir() {
        return dir;
    }

    public Instant createTime() {
        return createTime;
    }

    public synchronized State state() {
        return state;
    }

    public synchronized String phase() {
        return phase;
    }

    public synchronized Instant startTime() {
        return startTime;
    }

    public synchronized Instant endTime() {
        return endTime;
    }

    public synchronized Failure failure() {
        return failure;
    }

    public synchronized EvaluationSummary summary() {
        return summary;
    }

    public synchronized List<ScoredOutput> outputs() {
        return List.copyOf(outputs);
    }

    public synchronized int outputsDone() {
        return outputs.size();
    }

    public int outputsTotal() {
        return request.prompts().size() * request.variants().size();
    }

    public boolean cancelRequested() {
        return cancelRequested;
    }

    synchronized boolean isDone(String variant, String promptId) {
        return done.contains(key(variant, promptId));
    }

    /** Replays the outputs scored so far, then follows the run; a finished run's final state is told at once. */
    public synchronized void follow(Listener listener) {
        outputs.forEach(output -> listener.onOutput(this, output));
        listener.onState(this);
        if (!state.isFinal()) {
            listeners.add(listener);
        }
    }

    public void unfollow(Listener listener) {
        listeners.remove(listener);
    }

    void requestCancel() {
        cancelRequested = true;
    }

    synchronized void restore(Instant start, Instant end, Failure why, List<ScoredOutput> scored,
            EvaluationSummary finished) {
        startTime = start;
        endTime = end;
        failure = why;
        scored.forEach(this::remember);
        summary = finished;
    }

    synchronized void started() {
        state = State.RUNNING;
        if (startTime == null) {
            startTime = Instant.now();
        }
        listeners.forEach(l -> l.onState(this));
    }

    synchronized void phase(String now) {
        phase = now;
        listeners.forEach(l -> l.onState(this));
    }

    synchronized void scored(ScoredOutput output) {
        remember(output);
        listeners.forEach(l -> l.onOutput(this, output));
    }

    private void remember(ScoredOutput output) {
        if (done.add(key(output.variant(), output.promptId()))) {
            outputs.add(output);
        }
    }

    synchronized void succeeded(EvaluationSummary result) {
        summary = result;
        finish(State.SUCCEEDED, null);
    }

    synchronized void failed(Failure why) {
        finish(State.FAILED, why);
    }

    synchronized void cancelled() {
        finish(State.CANCELLED, null);
    }

    private void finish(State finalState, Failure why) {
        if (state.isFinal()) {
            return;
        }
        state = finalState;
        failure = why;
        phase = "";
        endTime = Instant.now();
        // on disk before anyone can see it: whoever reads the final state and stops the gateway finds it in the folder
        try {
            EvaluationRunFolder.writeState(this);
        } catch (java.io.UncheckedIOException e) {
            // the folder still says it is unfinished: the next start continues it without redoing its outputs
            System.getLogger(EvaluationRun.class.getName()).log(System.Logger.Level.WARNING, e.getMessage());
        }
        listeners.forEach(l -> l.onState(this));
        listeners.clear();
    }

    private static String key(String variant, String promptId) {
        return variant + "\u0000" + promptId;
    }
}

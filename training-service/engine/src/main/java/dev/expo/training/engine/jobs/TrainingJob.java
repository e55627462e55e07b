package dev.expo.training.engine.jobs;

import dev.expo.common.ExpoException;
import dev.expo.training.engine.ddpo.DdpoTrainer;

import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * One training job and everything observable about it: its state, every step's metrics (so a watcher can start from
 * any step) and its checkpoints. Changes and listener calls happen under the job's lock, so a listener sees events
 * in order and never two at once.
 */
public final class TrainingJob {

    public enum State {
        QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED;

        public boolean isFinal() {
            return this == SUCCEEDED || this == FAILED || this == CANCELLED;
        }
    }

    /** Why a job failed: the error kind (null = internal) and its message. */
    public record Failure(ExpoException.Kind kind, String message) {
    }

    /** One optimizer step as the job reports it. */
    public record Step(DdpoTrainer.StepMetrics metrics, double epoch, long totalSteps, Instant time) {
        public long step() {
            return metrics.step();
        }
    }

    /** Sees a job's steps (from the step asked for) and its state changes, the last one final. */
    public interface Listener {
        void onStep(TrainingJob job, Step step);

        void onState(TrainingJob job);
    }

    private final String id;
    private final TrainingRequest request;
    private final Path dir;
    private final Instant createTime;
    private final List<Listener> listeners = new CopyOnWriteArrayList<>();
    private final List<Step> steps = new ArrayList<>();
    private final List<String> checkpoints = new ArrayList<>();
    private volatile boolean cancelRequested;
    private State state;
    private Failure failure;
    private Instant startTime;
    private Instant endTime;
    private long totalSteps;

    TrainingJob(String id, TrainingRequest request, Path dir, Instant createTime, State state) {
        this.id = id;
        this.request = request;
        this.dir = dir;
        this.createTime = createTime;
        this.state = state;
    }

    public String id() {
        return id;
    }

    public TrainingRequest request() {
        return request;
    }

    /** The job's folder in the store. */
    public Path dir() {
        return dir;
    }

    public Instant createTime() {
        return createTime;
    }

    public synchronized State state() {
        return state;
    }

    public synchronized Failure failure() {
        return failure;
    }

    public synchronized Instant startTime() {
        return startTime;
    }

    public synchronized Instant endTime() {
        return endTime;
    }

    public synchronized long totalSteps() {
        return totalSteps;
    }

    /** The newest step, or null before the first. */
    public synchronized Step latest() {
        return steps.isEmpty() ? null : steps.getLast();
    }

    public synchronized List<Step> steps() {
        return List.copyOf(steps);
    }

    /** Checkpoint folder names (checkpoint-STEP), oldest first. */
    public synchronized List<String> checkpoints() {
        return List.copyOf(checkpoints);
    }

    public boolean cancelRequested() {
        return cancelRequested;
    }

    /**
     * Replays the steps from {@code fromStep} on, then follows the job; a finished job's final state is told at once.
     */
    public synchronized void follow(long fromStep, Listener listener) {
        for (Step step : steps) {
            if (step.step() >= fromStep) {
                listener.onStep(this, step);
            }
        }
        if (state.isFinal()) {
            listener.onState(this);
        } else {
            listeners.add(listener);
        }
    }

    public void unfollow(Listener listener) {
        listeners.remove(listener);
    }

    void requestCancel() {
        cancelRequested = true;
    }

    /** What a restarted service knew of the job: its times, steps and checkpoints as its folder holds them. */
    synchronized void restore(Instant start, Instant end, Failure why, List<Step> history, List<String> saved) {
        startTime = start;
        endTime = end;
        failure = why;
        steps.clear();
        steps.addAll(history);
        checkpoints.clear();
        checkpoints.addAll(saved);
        if (!history.isEmpty()) {
            totalSteps = history.getLast().totalSteps();
        }
    }

    synchronized void started(long total) {
        state = State.RUNNING;
        totalSteps = total;
        if (startTime == null) {
            startTime = Instant.now();
        }
        listeners.forEach(l -> l.onState(this));
    }

    synchronized void stepped(Step step) {
        // A resumed job repeats the steps after its last checkpoint: the new ones replace what was reported.
        steps.removeIf(s -> s.step() >= step.step());
        steps.add(step);
        listeners.forEach(l -> l.onStep(this, step));
    }

    synchronized void checkpointed(String name) {
        if (!checkpoints.contains(name)) {
            checkpoints.add(name);
        }
    }

    /** A resumed job drops the steps past the checkpoint it continues from. */
    synchronized void rewind(long step) {
        steps.removeIf(s -> s.step() > step);
    }

    synchronized void succeeded() {
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
        endTime = Instant.now();
        listeners.forEach(l -> l.onState(this));
        listeners.clear();
    }
}

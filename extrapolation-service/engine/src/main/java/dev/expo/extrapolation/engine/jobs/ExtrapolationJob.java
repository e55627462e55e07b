package dev.expo.extrapolation.engine.jobs;

import dev.expo.common.ExpoException;
import dev.expo.extrapolation.engine.ExtrapolationProgress;
import dev.expo.extrapolation.engine.ExtrapolationResult;
import dev.expo.extrapolation.engine.ExtrapolationSpec;

import java.time.Instant;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * One extrapolation job and everything observable about it. State changes and listener calls happen under the
 * job's lock, so a listener sees events in order and never two at once.
 */
public final class ExtrapolationJob {

    /** Why a job failed: the error kind (null = internal) and its message. */
    public record Failure(ExpoException.Kind kind, String message) {
    }

    private final String id;
    private final ExtrapolationRequest request;
    private final Instant createTime;
    private final List<JobListener> listeners = new CopyOnWriteArrayList<>();
    private volatile boolean cancelRequested;
    private JobState state = JobState.QUEUED;
    private ExtrapolationProgress progress = ExtrapolationProgress.of(ExtrapolationProgress.Phase.QUEUED);
    private ExtrapolationResult result;
    private Failure failure;
    private Instant startTime;
    private Instant endTime;

    ExtrapolationJob(String id, ExtrapolationRequest request) {
        this(id, request, Instant.now());
    }

    ExtrapolationJob(String id, ExtrapolationRequest request, Instant createTime) {
        this.id = id;
        this.request = request;
        this.createTime = createTime;
    }

    public String id() {
        return id;
    }

    public ExtrapolationRequest request() {
        return request;
    }

    public ExtrapolationSpec spec() {
        return request.spec();
    }

    public String outputModel() {
        return request.outputModel();
    }

    public Instant createTime() {
        return createTime;
    }

    public synchronized JobState state() {
        return state;
    }

    public synchronized ExtrapolationProgress progress() {
        return progress;
    }

    public synchronized ExtrapolationResult result() {
        return result;
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

    public boolean cancelRequested() {
        return cancelRequested;
    }

    /** Adds a listener; if the job has already ended, it is told at once. */
    public synchronized void follow(JobListener listener) {
        if (state.isFinal()) {
            listener.onFinished(this);
        } else {
            listeners.add(listener);
        }
    }

    public void unfollow(JobListener listener) {
        listeners.remove(listener);
    }

    void requestCancel() {
        cancelRequested = true;
    }

    synchronized void started() {
        state = JobState.RUNNING;
        startTime = Instant.now();
    }

    synchronized void progressed(ExtrapolationProgress update) {
        if (state.isFinal()) {
            return;
        }
        progress = update;
        for (JobListener listener : listeners) {
            listener.onProgress(this, update);
        }
    }

    synchronized void succeeded(ExtrapolationResult outcome) {
        result = outcome;
        finish(JobState.SUCCEEDED);
    }

    synchronized void failed(Failure why) {
        failure = why;
        finish(JobState.FAILED);
    }

    synchronized void cancelled() {
        finish(JobState.CANCELLED);
    }

    private void finish(JobState finalState) {
        if (state.isFinal()) {
            return;
        }
        state = finalState;
        endTime = Instant.now();
        for (JobListener listener : listeners) {
            listener.onFinished(this);
        }
        listeners.clear();
    }
}

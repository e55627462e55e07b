package dev.expo.training.engine.jobs;

import dev.expo.common.ExpoException;
import dev.expo.common.store.ModelStore;
import dev.expo.training.engine.data.DatasetStore;
import dev.expo.training.engine.ddpo.DdpoTrainer;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.function.Consumer;

/**
 * Durable training jobs: one runs at a time (one device), at most {@code maxQueued} wait behind it (beyond that,
 * RESOURCE_EXHAUSTED). Every job is a folder under {@code <store>/.jobs/training/}; a service that starts again
 * ({@link #recover}) queues its unfinished jobs again, each continuing from its last checkpoint. A request is planned
 * against the store when it is submitted, so bad input fails at once and never becomes a job.
 */
public final class TrainingJobs implements AutoCloseable {

    /** Sees every job's steps and ends (metrics). */
    public interface Observer {
        void onStep(TrainingJob job, TrainingJob.Step step);

        void onFinished(TrainingJob job);
    }

    private final ModelStore store;
    private final DatasetStore datasets;
    private final int maxQueued;
    private final Observer observer;
    private final long memoryCapBytes;
    private final Path root;
    private final ExecutorService runner;
    private final Map<String, TrainingJob> jobs = new LinkedHashMap<>();
    private volatile boolean closing;

    public TrainingJobs(ModelStore store, DatasetStore datasets, int maxQueued, Observer observer) {
        this(store, datasets, maxQueued, 0, observer);
    }

    /** @param memoryCapBytes the most a micro batch may take (0 = no cap); see {@link DdpoTrainer.Settings} */
    public TrainingJobs(ModelStore store, DatasetStore datasets, int maxQueued, long memoryCapBytes,
                        Observer observer) {
        if (maxQueued < 0) {
            throw new IllegalArgumentException("maxQueued must be >= 0");
        }
        this.store = store;
        this.datasets = datasets;
        this.maxQueued = maxQueued;
        this.observer = observer;
        this.memoryCapBytes = memoryCapBytes;
        this.root = store.root().resolve(".jobs").resolve("training");
        this.runner = Executors.newSingleThreadExecutor(r -> {
            Thread thread = new Thread(r, "training-job");
            thread.setDaemon(true);
            return thread;
        });
    }

    /**
     * Loads every job folder; queued and running ones (the service stopped or was killed under them) are queued
     * again, oldest first, to continue from their last checkpoint.
     */
    public synchronized List<TrainingJob> recover() {
        List<TrainingJob> resumed = new ArrayList<>();
        if (!Files.isDirectory(root)) {
            return resumed;
        }
        List<TrainingJob> found = new ArrayList<>();
        try (var children = Files.list(root)) {
            for (Path dir : children.sorted().toList()) {
                if (dir.getFileName().toString().startsWith(".tmp-")) {
                    ModelStore.deleteTree(dir);
                    continue;
                }
                TrainingJob job = TrainingJobFolder.read(dir);
                if (job != null) {
                    found.add(job);
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list " + root, e);
        }
        found.sort(Comparator.comparing(TrainingJob::createTime));
        for (TrainingJob job : found) {
            jobs.put(job.id(), job);
            if (!job.state().isFinal()) {
                runner.submit(() -> run(job));
                resumed.add(job);
            }
        }
        return resumed;
    }

    /** Checks the request against the store, writes the job's folder and queues it. */
    public TrainingJob submit(TrainingRequest request) {
        // Every check, from configs and headers; the job loads the models when it starts.
        TrainingRun.check(store, datasets, request);
        synchronized (this) {
            long waiting = jobs.values().stream().filter(j -> j.state() == TrainingJob.State.QUEUED).count();
            if (waiting >= maxQueued + (running() == null ? 1 : 0)) {
                throw ExpoException.resourceExhausted(waiting + " training job(s) are waiting (limit "
                        + maxQueued + " behind the running one); retry when one finishes");
            }
            for (TrainingJob other : jobs.values()) {
                if (!other.state().isFinal() && other.request().outputModel().equals(request.outputModel())) {
                    throw ExpoException.failedPrecondition("training job " + other.id() + " is already writing \""
                            + request.outputModel() + "\"");
                }
            }
            String id = UUID.randomUUID().toString();
            TrainingJob job = new TrainingJob(id, request, root.resolve(id), Instant.now(),
                    TrainingJob.State.QUEUED);
            TrainingJobFolder.create(job.dir(), job);
            jobs.put(id, job);
            runner.submit(() -> run(job));
            return job;
        }
    }

    private TrainingJob running() {
        return jobs.values().stream().filter(j -> j.state() == TrainingJob.State.RUNNING).findFirst().orElse(null);
    }

    private void run(TrainingJob job) {
        if (job.state().isFinal()) {
            return;
        }
        if (job.cancelRequested()) {
            finish(job, TrainingJob::cancelled);
            return;
        }
        if (closing) {
            return;
        }
        try {
            removeScratch(job.dir());
            Path last = TrainingCheckpoint.latest(job.dir());
            if (last != null && TrainingCheckpoint.isLast(last) && store.exists(job.request().outputModel())) {
                // Killed after publishing, before recording it.
                finish(job, TrainingJob::succeeded);
                return;
            }
            try (TrainingRun run = TrainingRun.plan(store, datasets, job.request())) {
                Path latest = TrainingCheckpoint.latest(job.dir());
                TrainingCheckpoint resumeFrom = latest == null ? null : TrainingCheckpoint.read(latest);
                job.rewind(resumeFrom == null ? 0 : resumeFrom.step());
                TrainingJobFolder.rewriteSteps(job);
                job.started(run.totalSteps());
                TrainingJobFolder.writeState(job);
                run.run(resumeFrom, memoryCapBytes, new TrainingRun.Progress() {
                    @Override
                    public void step(DdpoTrainer.StepMetrics metrics, double epoch) {
                        TrainingJob.Step step = new TrainingJob.Step(metrics, epoch, run.totalSteps(), Instant.now());
                        TrainingJobFolder.appendStep(job, step);
                        job.stepped(step);
                        observer.onStep(job, step);
                    }

                    @Override
                    public void checkpoint(TrainingCheckpoint checkpoint, boolean epochEnd) {
                        Path dir = checkpoint.write(job.dir(), run.lora(), run.schedule(), job.request(),
                                run.stepsPerEpoch(), TrainingJobFolder.logHistory(job, checkpoint.step()));
                        job.checkpointed(dir.getFileName().toString());
                        TrainingJobFolder.writeState(job);
                    }
                }, () -> job.cancelRequested() || closing);
            }
            finish(job, TrainingJob::succeeded);
        } catch (CancellationException e) {
            if (job.cancelRequested()) {
                finish(job, TrainingJob::cancelled);
            }
            // else the service is stopping: the job stays RUNNING on disk and resumes when it starts again
        } catch (ExpoException e) {
            finish(job, j -> j.failed(new TrainingJob.Failure(e.kind(), e.getMessage())));
        } catch (RuntimeException | Error e) {
            if (closing) {
                return; // torn down under the job (the engine closed): it resumes on the next start
            }
            finish(job, j -> j.failed(new TrainingJob.Failure(null, e.getClass().getSimpleName() + ": "
                    + e.getMessage())));
        }
    }

    /** A checkpoint or state file cut by a kill is garbage: whole ones were renamed into place. */
    private static void removeScratch(Path jobDir) {
        try (var children = Files.list(jobDir)) {
            children.filter(c -> c.getFileName().toString().startsWith(".tmp-")).forEach(ModelStore::deleteTree);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list " + jobDir, e);
        }
    }

    private void finish(TrainingJob job, Consumer<TrainingJob> end) {
        end.accept(job);
        TrainingJobFolder.writeState(job);
        observer.onFinished(job);
    }

    public synchronized TrainingJob get(String id) {
        TrainingJob job = jobs.get(id);
        if (job == null) {
            throw ExpoException.notFound("no training job \"" + id + "\" (bin/expo jobs lists them)");
        }
        return job;
    }

    /** Newest first. */
    public synchronized List<TrainingJob> list() {
        List<TrainingJob> all = new ArrayList<>(jobs.values());
        all.sort(Comparator.comparing(TrainingJob::createTime).reversed());
        return all;
    }

    /**
     * Cancels a queued or running job: a running one stops after its current step and keeps its checkpoints; nothing
     * is published. A finished job is returned as it is.
     */
    public TrainingJob cancel(String id) {
        TrainingJob job = get(id);
        if (job.state().isFinal()) {
            return job;
        }
        job.requestCancel();
        synchronized (this) {
            if (job.state() == TrainingJob.State.QUEUED) {
                // Its queued task sees the request and ends at once; record the end now for the caller.
                finish(job, TrainingJob::cancelled);
            }
        }
        return job;
    }

    public synchronized int queued() {
        return (int) jobs.values().stream().filter(j -> j.state() == TrainingJob.State.QUEUED).count();
    }

    public synchronized boolean busy() {
        return running() != null;
    }

    /** Stops the running job between steps without ending it: it is resumed when the service starts again. */
    @Override
    public void close() {
        closing = true;
        runner.shutdown();
        try {
            runner.awaitTermination(30, java.util.concurrent.TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        runner.shutdownNow();
    }
}

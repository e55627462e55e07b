package dev.expo.evaluation.engine.runs;

import dev.expo.common.ExpoException;
import dev.expo.evaluation.engine.EvaluationSummary;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * Durable evaluation runs: one runs at a time (its generations already fill the inference service's batches), at most
 * {@code maxQueued} wait behind it (beyond that, RESOURCE_EXHAUSTED). Every run is a folder under {@code root}
 * ({@code <store>/.jobs/evaluation/}); a gateway that starts again ({@link #recover}) queues its unfinished runs,
 * each continuing with the outputs its folder does not hold yet. A request is checked against the backends when it is
 * submitted, so bad input fails at once and never becomes a run.
 */
public final class EvaluationRuns implements AutoCloseable {

    private static final System.Logger LOG = System.getLogger(EvaluationRuns.class.getName());

    private final Path root;
    private final EvaluationBackends backends;
    private final int concurrency;
    private final int maxQueued;
    private final ExecutorService runner;
    private final Map<String, EvaluationRun> runs = new LinkedHashMap<>();
    private volatile boolean closing;

    /** @param concurrency generations in flight at once (the inference service's batch size is a good value) */
    public EvaluationRuns(Path root, EvaluationBackends backends, int concurrency, int maxQueued) {
        if (concurrency < 1 || maxQueued < 0) {
            throw new IllegalArgumentException("concurrency must be >= 1 and maxQueued >= 0");
        }
        this.root = root;
        this.backends = backends;
        this.concurrency = concurrency;
        this.maxQueued = maxQueued;
        this.runner = Executors.newSingleThreadExecutor(r -> {
            Thread thread = new Thread(r, "evaluation-run");
            thread.setDaemon(true);
            return thread;
        });
    }

    /** Loads every run folder; queued and running ones are queued again, oldest first, to continue. */
    public synchronized List<EvaluationRun> recover() {
        List<EvaluationRun> found = new ArrayList<>();
        if (Files.isDirectory(root)) {
            try (DirectoryStream<Path> dirs = Files.newDirectoryStream(root, Files::isDirectory)) {
                for (Path dir : dirs) {
                    if (dir.getFileName().toString().startsWith(".tmp-")) {
                        dev.expo.common.store.ModelStore.deleteTree(dir);   // a create cut short: never a run
                        continue;
                    }
                    try {
                        EvaluationRun run = EvaluationRunFolder.read(dir);
                        if (run != null) {
                            found.add(run);
                        }
                    } catch (IllegalStateException e) {
                        LOG.log(System.Logger.Level.WARNING, e.getMessage());
                    }
                }
            } catch (IOException e) {
                throw new UncheckedIOException("cannot list " + root, e);
            }
        }
        found.sort(Comparator.comparing(EvaluationRun::createTime));
        List<EvaluationRun> resumed = new ArrayList<>();
        for (EvaluationRun run : found) {
            runs.put(run.id(), run);
            if (!run.state().isFinal()) {
                EvaluationRunFolder.rewriteResults(run);
                resumed.add(run);
                runner.execute(() -> execute(run));
            }
        }
        return resumed;
    }

    public EvaluationRun submit(EvaluationRequest request) {
        request.check();
        backends.checkRewardModel(request.rewardModel());
        request.variants().forEach(backends::checkVariant);
        synchronized (this) {
            if (queued() >= maxQueued + (busy() ? 0 : 1)) {
                throw new ExpoException(ExpoException.Kind.RESOURCE_EXHAUSTED, queued() + " evaluation runs are"
                        + " waiting (the most is " + maxQueued + "); try again when one has finished");
            }
            String id = UUID.randomUUID().toString().substring(0, 8);
            EvaluationRun run = new EvaluationRun(id, request.markPreexisting(id, backends::modelExists),
                    root.resolve(id), Instant.now(),
                    EvaluationRun.State.QUEUED);
            try {
                Files.createDirectories(root);
            } catch (IOException e) {
                throw new UncheckedIOException("cannot create " + root, e);
            }
            EvaluationRunFolder.create(run.dir(), run);
            runs.put(id, run);
            runner.execute(() -> execute(run));
            return run;
        }
    }

    public synchronized EvaluationRun get(String id) {
        EvaluationRun run = runs.get(id);
        if (run == null) {
            throw ExpoException.notFound("no evaluation run " + id + " (bin/expo eval list shows the runs)");
        }
        return run;
    }

    public synchronized List<EvaluationRun> list() {
        return List.copyOf(runs.values());
    }

    /** Asks the run to stop; it stops within one batch of outputs and keeps what it scored. */
    public EvaluationRun cancel(String id) {
        EvaluationRun run = get(id);
        run.requestCancel();
        synchronized (run) {
            if (run.state() == EvaluationRun.State.QUEUED) {
                run.cancelled();
            }
        }
        return run;
    }

    private synchronized int queued() {
        return (int) runs.values().stream().filter(r -> r.state() == EvaluationRun.State.QUEUED).count();
    }

    private synchronized boolean busy() {
        return runs.values().stream().anyMatch(r -> r.state() == EvaluationRun.State.RUNNING);
    }

    private void execute(EvaluationRun run) {
        if (run.state().isFinal() || closing) {
            return;
        }
        run.started();
        EvaluationRunFolder.writeState(run);
        RunExecution execution = new RunExecution(run, backends, concurrency, () -> closing);
        try {
            EvaluationSummary summary = execution.run();
            EvaluationRunFolder.writeReport(run.dir(), run.request(), run.outputs(), summary);
            run.succeeded(summary);
        } catch (Exception e) {
            if (closing && !run.cancelRequested()) {
                // the gateway is stopping: the run stays RUNNING in its folder and continues on the next start
                return;
            }
            execution.removeModelsMade();
            if (e instanceof RunExecution.Stopped || run.cancelRequested()) {
                run.cancelled();
            } else if (e instanceof ExpoException expo) {
                run.failed(new EvaluationRun.Failure(expo.kind(), expo.getMessage()));
            } else {
                LOG.log(System.Logger.Level.ERROR, "evaluation run " + run.id() + " failed", e);
                run.failed(new EvaluationRun.Failure(null, e.toString()));
            }
        }
    }

    @Override
    public void close() {
        closing = true;
        runner.shutdownNow();
        try {
            // a run between its last output and its final state finishes writing its folder
            if (!runner.awaitTermination(10, java.util.concurrent.TimeUnit.SECONDS)) {
                LOG.log(System.Logger.Level.WARNING, "the evaluation run did not stop within 10 s");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}

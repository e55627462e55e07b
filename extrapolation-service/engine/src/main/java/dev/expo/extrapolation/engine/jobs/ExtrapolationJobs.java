package dev.expo.extrapolation.engine.jobs;

import dev.expo.common.ExpoException;
import dev.expo.extrapolation.engine.ExtrapolationPlan;
import dev.expo.extrapolation.engine.ExtrapolationProgress;
import dev.expo.extrapolation.engine.ExtrapolationResult;
import dev.expo.extrapolation.engine.Extrapolator;
import dev.expo.extrapolation.engine.Planner;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.Consumer;

/**
 * Runs extrapolation jobs: at most {@code maxRunning} at once, at most {@code maxQueued} waiting (beyond that,
 * RESOURCE_EXHAUSTED), the last {@code retained} finished ones kept for inspection. A request is planned (and so
 * fully checked) when it is submitted: a bad request fails at once and never becomes a job.
 */
public final class ExtrapolationJobs implements AutoCloseable {

    public record Limits(int maxRunning, int maxQueued, int retained) {
        public Limits {
            if (maxRunning < 1 || maxQueued < 0 || retained < 1) {
                throw new IllegalArgumentException("invalid job limits");
            }
        }
    }

    private final Planner planner;
    private final Extrapolator extrapolator;
    private final Limits limits;
    private final ExecutorService runner;
    private final Map<String, ExtrapolationJob> jobs = new LinkedHashMap<>();
    private final Map<String, Future<?>> futures = new LinkedHashMap<>();
    /** Plans of jobs not finished yet (they hold the input files open). */
    private final Map<String, ExtrapolationPlan> plans = new LinkedHashMap<>();
    private final Consumer<ExtrapolationJob> onFinished;
    private final JobJournal journal;

    /** {@code onFinished} sees every job end (metrics). No journal: jobs are forgotten with the process. */
    public ExtrapolationJobs(Planner planner, Extrapolator extrapolator, Limits limits,
                             Consumer<ExtrapolationJob> onFinished) {
        this(planner, extrapolator, limits, onFinished, JobJournal.none());
    }

    /** As above, each unfinished job recorded in {@code journal} ({@link #restoreInterrupted}). */
    public ExtrapolationJobs(Planner planner, Extrapolator extrapolator, Limits limits,
                             Consumer<ExtrapolationJob> onFinished, JobJournal journal) {
        this.planner = planner;
        this.extrapolator = extrapolator;
        this.limits = limits;
        this.onFinished = onFinished;
        this.journal = journal;
        this.runner = Executors.newFixedThreadPool(limits.maxRunning(), r -> {
            Thread thread = new Thread(r, "extrapolation-job");
            thread.setDaemon(true);
            return thread;
        });
    }

    /** Checks and queues a job. The follower, if any, is attached before the job can start, so it sees every event. */
    public ExtrapolationJob submit(ExtrapolationRequest request, JobListener follower) {
        return submit(request, follower, new byte[0]);
    }

    /**
     * As above; {@code order} is the request as the caller encodes it, kept in the journal until the job ends so that
     * {@link #restoreInterrupted} can show it after a restart.
     */
    public ExtrapolationJob submit(ExtrapolationRequest request, JobListener follower, byte[] order) {
        String outputModel = request.outputModel();
        extrapolator.checkOutput(request.spec(), outputModel, request.overwrite());
        ExtrapolationPlan plan = planner.plan(request.spec(), request.maxShardBytes());
        ExtrapolationJob job;
        synchronized (this) {
            int active = active();
            if (active >= limits.maxRunning() + limits.maxQueued()) {
                plan.close();
                throw ExpoException.resourceExhausted(active + " extrapolation job(s) are running or waiting (limit "
                        + limits.maxRunning() + " running + " + limits.maxQueued() + " waiting); retry when one "
                        + "finishes");
            }
            for (ExtrapolationJob other : jobs.values()) {
                if (!other.state().isFinal() && other.outputModel().equals(outputModel)) {
                    plan.close();
                    throw ExpoException.failedPrecondition("job " + other.id() + " is already writing \""
                            + outputModel + "\"");
                }
            }
            job = new ExtrapolationJob(UUID.randomUUID().toString(), request);
            if (follower != null) {
                job.follow(follower);
            }
            job.progressed(ExtrapolationProgress.of(ExtrapolationProgress.Phase.QUEUED));
            try {
                journal.opened(job.id(), job.createTime(), order);
            } catch (RuntimeException e) {
                plan.close();
                throw new ExpoException(ExpoException.Kind.UNAVAILABLE, "cannot record the job on disk: "
                        + e.getMessage());
            }
            jobs.put(job.id(), job);
            plans.put(job.id(), plan);
            futures.put(job.id(), runner.submit(() -> run(job, plan, request.overwrite())));
            trim();
        }
        return job;
    }

    private void run(ExtrapolationJob job, ExtrapolationPlan plan, boolean overwrite) {
        Runnable end;
        try (plan) {
            if (job.cancelRequested()) {
                end = job::cancelled;
            } else {
                job.started();
                ExtrapolationResult result = extrapolator.run(plan, job.outputModel(), overwrite,
                        p -> job.progressed(p), job::cancelRequested);
                end = () -> job.succeeded(result);
            }
        } catch (CancellationException e) {
            end = job::cancelled;
        } catch (ExpoException e) {
            end = () -> job.failed(new ExtrapolationJob.Failure(e.kind(), e.getMessage()));
        } catch (RuntimeException | Error e) {
            end = () -> job.failed(new ExtrapolationJob.Failure(null, e.getClass().getSimpleName() + ": "
                    + e.getMessage()));
        }
        synchronized (this) {
            futures.remove(job.id());
            plans.remove(job.id());
        }
        finish(job, end);
    }

    /** The journal forgets the job before its end is visible: whoever sees it finished finds no entry left. */
    private void finish(ExtrapolationJob job, Runnable end) {
        journal.closed(job.id());
        end.run();
        onFinished.accept(job);
    }

    /**
     * The jobs an earlier process left unfinished (it was killed, or the machine went down), shown as failed: their
     * output was never published (it was being written under the store's staging folder, which is cleared at start).
     * {@code decode} turns a journal entry's order back into its request; an entry it cannot decode is dropped.
     * Returns how many were restored.
     */
    public int restoreInterrupted(java.util.function.Function<byte[], ExtrapolationRequest> decode) {
        int restored = 0;
        for (JobJournal.Entry entry : journal.leftOver()) {
            ExtrapolationRequest request;
            try {
                request = decode.apply(entry.order());
            } catch (RuntimeException unreadable) {
                journal.closed(entry.id());
                continue;
            }
            ExtrapolationJob job = new ExtrapolationJob(entry.id(), request, entry.created());
            job.failed(new ExtrapolationJob.Failure(ExpoException.Kind.UNAVAILABLE, "the extrapolation service "
                    + "stopped before this job finished (it was restarted); nothing of \"" + request.outputModel()
                    + "\" was published: run it again"));
            synchronized (this) {
                jobs.put(job.id(), job);
                trim();
            }
            journal.closed(entry.id());
            restored++;
        }
        return restored;
    }

    public synchronized ExtrapolationJob get(String id) {
        ExtrapolationJob job = jobs.get(id);
        if (job == null) {
            throw ExpoException.notFound("no extrapolation job \"" + id + "\" (finished jobs are kept in memory: "
                    + "the last " + limits.retained() + " of them, until the service restarts)");
        }
        return job;
    }

    /** Newest first. */
    public synchronized List<ExtrapolationJob> list() {
        List<ExtrapolationJob> all = new ArrayList<>(jobs.values());
        all.sort(Comparator.comparing(ExtrapolationJob::createTime).reversed());
        return all;
    }

    /** Cancels a queued or running job (its output is removed); a finished job is returned as it is. */
    public ExtrapolationJob cancel(String id) {
        ExtrapolationJob job;
        Future<?> future;
        synchronized (this) {
            job = get(id);
            future = futures.get(id);
        }
        if (job.state().isFinal()) {
            return job;
        }
        job.requestCancel();
        if (future != null && job.state() == JobState.QUEUED && future.cancel(false)) {
            // It never started: close its inputs here, as run() will not.
            ExtrapolationPlan plan;
            synchronized (this) {
                futures.remove(id);
                plan = plans.remove(id);
            }
            if (plan != null) {
                plan.close();
            }
            finish(job, job::cancelled);
        }
        return job;
    }

    public synchronized int active() {
        return (int) jobs.values().stream().filter(j -> !j.state().isFinal()).count();
    }

    /** Forgets the oldest finished jobs beyond the retention limit. */
    private void trim() {
        List<ExtrapolationJob> finished = jobs.values().stream().filter(j -> j.state().isFinal())
                .sorted(Comparator.comparing(ExtrapolationJob::createTime)).toList();
        for (int i = 0; i < finished.size() - limits.retained(); i++) {
            jobs.remove(finished.get(i).id());
        }
    }

    @Override
    public void close() {
        synchronized (this) {
            jobs.values().forEach(ExtrapolationJob::requestCancel);
        }
        runner.shutdownNow();
    }
}

package dev.expo.evaluation.engine.runs;

import dev.expo.common.ExpoException;
import dev.expo.evaluation.engine.EvaluationSummary;
import dev.expo.evaluation.engine.ScoredOutput;
import dev.expo.evaluation.engine.stats.Repetition;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

/**
 * The work of one run, variant after variant: make its model if the run extrapolates it (unless an earlier attempt
 * did), generate every prompt it has not answered with up to {@code concurrency} generations in flight, score what
 * finished in one reward call, append it to the run's folder, and remove the model the run made unless told to keep
 * it. One variant's model at a time is loaded, so a sweep of 7B models needs the memory of one.
 */
final class RunExecution {

    /** The run stopped on request (cancel) or because the gateway is stopping. */
    static final class Stopped extends RuntimeException {
        Stopped() {
            super(null, null, false, false);
        }
    }

    private record Finished(EvaluationRequest.Prompt prompt, int index, EvaluationBackends.Generation generation,
            Throwable error) {
    }

    private final EvaluationRun run;
    private final EvaluationBackends backends;
    private final int concurrency;
    private final EvaluationBackends.Cancellation cancellation;
    private final Set<String> made = new LinkedHashSet<>();

    RunExecution(EvaluationRun run, EvaluationBackends backends, int concurrency, BooleanSupplier closing) {
        this.run = run;
        this.backends = backends;
        this.concurrency = concurrency;
        this.cancellation = () -> run.cancelRequested() || closing.getAsBoolean();
    }

    EvaluationSummary run() {
        EvaluationRequest request = run.request();
        for (EvaluationRequest.Variant variant : request.variants()) {
            stopIfCancelled();
            String model = EvaluationRequest.modelOf(run.id(), variant);
            List<Integer> remaining = new ArrayList<>();
            for (int i = 0; i < request.prompts().size(); i++) {
                if (!run.isDone(variant.name(), request.prompts().get(i).id())) {
                    remaining.add(i);
                }
            }
            if (!remaining.isEmpty()) {
                if (variant.extrapolated() && !variant.preexisting()) {
                    // after a restart the model this run made may be there already: it is not made twice
                    if (!backends.modelExists(model)) {
                        run.phase("extrapolating " + variant.name() + " into " + model);
                        backends.extrapolate(variant.extrapolationSpec(), model, cancellation);
                    }
                    made.add(model);
                }
                run.phase("generating " + variant.name());
                generateAndScore(variant, model, remaining);
            }
            if (variant.extrapolated() && !variant.preexisting() && !request.keepModels()) {
                remove(model);
            }
        }
        run.phase("summarizing");
        return EvaluationSummary.of(run.outputs(), request.variants().stream().map(EvaluationRequest.Variant::name)
                .toList(), request.referenceVariant(), EvaluationRunFolder.bootstrapOf(request));
    }

    /** After a failure or a cancel: the models this run extrapolated go, unless the request keeps them. */
    void removeModelsMade() {
        if (!run.request().keepModels()) {
            List.copyOf(made).forEach(this::remove);
        }
    }

    private void remove(String model) {
        try {
            if (backends.modelExists(model)) {
                backends.removeModel(model);
            }
            made.remove(model);
        } catch (RuntimeException e) {
            System.getLogger(RunExecution.class.getName()).log(System.Logger.Level.WARNING,
                    "run " + run.id() + " could not remove " + model + ": " + e.getMessage());
        }
    }

    private void generateAndScore(EvaluationRequest.Variant variant, String model, List<Integer> remaining) {
        EvaluationRequest request = run.request();
        BlockingQueue<Finished> finished = new LinkedBlockingQueue<>();
        List<CompletableFuture<EvaluationBackends.Generation>> inFlight = new ArrayList<>();
        Iterator<Integer> next = remaining.iterator();
        int running = 0;
        try {
            while (next.hasNext() || running > 0) {
                while (next.hasNext() && running < concurrency) {
                    int index = next.next();
                    EvaluationRequest.Prompt prompt = request.prompts().get(index);
                    CompletableFuture<EvaluationBackends.Generation> future = backends.generate(
                            new EvaluationBackends.GenerationCall(variant, model, prompt, request.useChatTemplate(),
                                    request.seed() + index));
                    inFlight.add(future);
                    future.whenComplete((generation, error) -> finished.add(
                            new Finished(prompt, index, generation, error)));
                    running++;
                }
                List<Finished> batch = new ArrayList<>();
                while (batch.isEmpty()) {
                    stopIfCancelled();
                    Finished one = finished.poll(200, TimeUnit.MILLISECONDS);
                    if (one != null) {
                        batch.add(one);
                        finished.drainTo(batch);
                    }
                }
                running -= batch.size();
                score(variant, batch);
                inFlight.removeIf(CompletableFuture::isDone);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new Stopped();
        } finally {
            inFlight.forEach(future -> future.cancel(true));
        }
    }

    private void score(EvaluationRequest.Variant variant, List<Finished> batch) {
        List<EvaluationBackends.RewardCall> calls = new ArrayList<>();
        for (Finished one : batch) {
            if (one.error() != null) {
                Throwable cause = one.error() instanceof CompletionException ? one.error().getCause() : one.error();
                if (cause instanceof ExpoException e) {
                    throw new ExpoException(e.kind(), "variant " + variant.name() + ", prompt " + one.prompt().id()
                            + ": " + e.getMessage(), e);
                }
                throw new IllegalStateException("variant " + variant.name() + ", prompt " + one.prompt().id()
                        + ": " + cause, cause);
            }
            calls.add(new EvaluationBackends.RewardCall(one.prompt().instruction(), one.generation().text()));
        }
        List<Double> rewards = backends.reward(run.request().rewardModel(), run.request().rewardAtLastToken(), calls);
        if (rewards.size() != calls.size()) {
            throw new IllegalStateException("the reward model answered " + rewards.size() + " scores for "
                    + calls.size() + " outputs");
        }
        List<ScoredOutput> scored = new ArrayList<>();
        for (int i = 0; i < batch.size(); i++) {
            Finished one = batch.get(i);
            EvaluationBackends.Generation generation = one.generation();
            scored.add(new ScoredOutput(one.prompt().id(), variant.name(), one.prompt().instruction(),
                    generation.text(), rewards.get(i), generation.tokenIds().length, generation.finishReason(),
                    Repetition.seqRep(generation.tokenIds())));
        }
        EvaluationRunFolder.append(run, scored);
        scored.forEach(run::scored);
    }

    private void stopIfCancelled() {
        if (cancellation.cancelled()) {
            throw new Stopped();
        }
    }
}

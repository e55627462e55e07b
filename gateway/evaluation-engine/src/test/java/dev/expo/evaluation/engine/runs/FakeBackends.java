package dev.expo.evaluation.engine.runs;

import dev.expo.common.ExpoException;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Backends whose outputs are a function of (model, adapter scale, prompt, seed): the output repeats a word as many
 * times as the model's "strength", and the reward is the output's length with a per-prompt offset, so a test can say
 * which variant should win on which prompt.
 */
class FakeBackends implements EvaluationBackends {

    final Set<String> models = ConcurrentHashMap.newKeySet();
    final Set<String> rewardModels = ConcurrentHashMap.newKeySet();
    final List<String> extrapolated = new ArrayList<>();
    final List<String> removed = new ArrayList<>();
    final AtomicInteger generations = new AtomicInteger();
    final AtomicInteger inFlight = new AtomicInteger();
    final AtomicInteger maxInFlight = new AtomicInteger();
    /** Generations allowed to finish; tests hold them back to stop a run midway. */
    final Semaphore allowed = new Semaphore(Integer.MAX_VALUE);
    private final ExecutorService pool = Executors.newCachedThreadPool(r -> {
        Thread thread = new Thread(r, "fake-generation");
        thread.setDaemon(true);
        return thread;
    });

    FakeBackends() {
        models.add("sft");
        models.add("dpo");
        rewardModels.add("rm");
    }

    @Override
    public void checkRewardModel(String model) {
        if (rewardModels.contains(model)) {
            return;
        }
        if (models.contains(model)) {
            throw ExpoException.invalidArgument("reward_model", model, "is a language model, not a reward model");
        }
        throw ExpoException.notFound("no model " + model + " in the store");
    }

    @Override
    public void checkVariant(EvaluationRequest.Variant variant) {
        if (!variant.extrapolated() && !models.contains(variant.model())) {
            throw ExpoException.notFound("no model " + variant.model() + " in the store");
        }
    }

    @Override
    public boolean modelExists(String model) {
        return models.contains(model);
    }

    @Override
    public synchronized void extrapolate(String spec, String outputModel, Cancellation cancellation) {
        extrapolated.add(outputModel + " " + spec);
        models.add(outputModel);
    }

    @Override
    public synchronized void removeModel(String model) {
        removed.add(model);
        models.remove(model);
    }

    @Override
    public CompletableFuture<Generation> generate(GenerationCall call) {
        if (!models.contains(call.model())) {
            return CompletableFuture.failedFuture(ExpoException.notFound("no model " + call.model()));
        }
        int now = inFlight.incrementAndGet();
        maxInFlight.accumulateAndGet(now, Math::max);
        return CompletableFuture.supplyAsync(() -> {
            try {
                allowed.acquire();
                Thread.sleep(2);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw ExpoException.invalidArgument("interrupted");
            } finally {
                inFlight.decrementAndGet();
            }
            generations.incrementAndGet();
            int strength = strength(call);
            StringBuilder text = new StringBuilder(call.prompt().id());
            int[] ids = new int[strength + 1];
            for (int i = 0; i < strength; i++) {
                text.append(" word");
                ids[i] = (int) (call.seed() % 3) + i % 2;
            }
            ids[strength] = 2;
            return new Generation(text.toString(), ids, strength > 6 ? "length" : "stop");
        }, pool);
    }

    /** "sft" says 1 word, "dpo" 2, an extrapolation spec {"alpha": A} 2 + A, an adapter scale s multiplies. */
    static int strength(GenerationCall call) {
        double base = switch (call.model()) {
            case "sft" -> 1;
            case "dpo" -> 2;
            default -> 2 + Double.parseDouble(call.variant().extrapolationSpec().replaceAll("[^0-9.]", ""));
        };
        double scale = call.variant().adapterScale() == null ? 1 : call.variant().adapterScale();
        return (int) Math.round(base * scale);
    }

    @Override
    public List<Double> reward(String rewardModel, boolean lastToken, List<RewardCall> calls) {
        List<Double> rewards = new ArrayList<>();
        for (RewardCall call : calls) {
            int words = call.response().split(" ").length - 1;
            // best at 4 words: more is rewarded less
            rewards.add(-Math.abs(words - 4.0) + Integer.parseInt(call.instruction().replaceAll("\\D", "")) * 0.01);
        }
        return rewards;
    }
}

package dev.expo.training.config;

import dev.expo.training.engine.jobs.TrainingJob;
import dev.expo.training.engine.jobs.TrainingJobs;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import jakarta.inject.Singleton;

import java.time.Duration;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Prometheus metrics of the training service: optimizer steps and their time, pairs and tokens trained, the last
 * step's loss and reward accuracy, jobs by outcome.
 */
@Singleton
public class TrainingMetrics implements TrainingJobs.Observer {

    private final MeterRegistry registry;
    private final Counter steps;
    private final Counter pairs;
    private final Counter tokens;
    private final Timer stepTime;
    private final DistributionSummary loss;
    private final AtomicReference<Double> lastLoss = new AtomicReference<>(Double.NaN);
    private final AtomicReference<Double> lastAccuracy = new AtomicReference<>(Double.NaN);

    public TrainingMetrics(MeterRegistry registry) {
        this.registry = registry;
        this.steps = Counter.builder("expo.training.steps").description("Optimizer steps taken").register(registry);
        this.pairs = Counter.builder("expo.training.pairs").description("Preference pairs trained on")
                .register(registry);
        this.tokens = Counter.builder("expo.training.tokens").description("Tokens (chosen + rejected) trained on")
                .register(registry);
        this.stepTime = Timer.builder("expo.training.step.duration").description("Wall time of an optimizer step")
                .register(registry);
        this.loss = DistributionSummary.builder("expo.training.loss").description("DDPO loss of each step")
                .register(registry);
        registry.gauge("expo.training.last.loss", lastLoss, AtomicReference::get);
        registry.gauge("expo.training.last.reward.accuracy", lastAccuracy, AtomicReference::get);
    }

    @Override
    public void onStep(TrainingJob job, TrainingJob.Step step) {
        steps.increment();
        pairs.increment(step.metrics().pairs());
        tokens.increment(step.metrics().tokens());
        stepTime.record(Duration.ofNanos((long) (step.metrics().seconds() * 1e9)));
        loss.record(step.metrics().loss());
        lastLoss.set(step.metrics().loss());
        lastAccuracy.set(step.metrics().accuracy());
    }

    @Override
    public void onFinished(TrainingJob job) {
        Counter.builder("expo.training.jobs").description("Finished training jobs by outcome")
                .tag("outcome", job.state().name().toLowerCase()).register(registry).increment();
    }
}

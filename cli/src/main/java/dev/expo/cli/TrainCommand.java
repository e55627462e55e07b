package dev.expo.cli;

import dev.expo.api.v1.DdpoSettings;
import dev.expo.api.v1.JobState;
import dev.expo.api.v1.LoraSettings;
import dev.expo.api.v1.Precision;
import dev.expo.api.v1.StartTrainingRequest;
import dev.expo.api.v1.TrainingEvent;
import dev.expo.api.v1.TrainingJob;
import dev.expo.api.v1.TrainingServiceGrpc;
import dev.expo.api.v1.TrainingStepMetrics;
import dev.expo.api.v1.WatchTrainingJobRequest;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;

/**
 * {@code expo train}: starts a durable DDPO job and follows it to its end, with a progress bar on a terminal. Options
 * left out take the service's defaults (the seed's: lr 2e-6, 3 epochs, global 8 / micro 2, beta 0.1, gamma 2).
 */
@Command(name = "train", sortOptions = false,
        description = {"Train a LoRA adapter and a projector with multimodal DDPO on a preprocessed dataset.",
            "The job is durable: Ctrl-C stops watching, not the job (bin/expo jobs cancel ID stops it); a training "
                    + "service that restarts resumes it from its last checkpoint."})
public class TrainCommand implements Callable<Integer> {

    @Option(names = "--language-model", required = true, paramLabel = "NAME", description = "The LLaMA/Mistral LM.")
    String languageModel;

    @Option(names = "--vision-tower", required = true, paramLabel = "NAME", description = "The CLIP vision tower.")
    String visionTower;

    @Option(names = "--dataset", required = true, paramLabel = "NAME",
            description = "A dataset made by 'expo datasets preprocess' with the LM's tokenizer.")
    String dataset;

    @Option(names = "--output", required = true, paramLabel = "NAME",
            description = "The multimodal model to write (expo-model.json + adapter/ + projector.safetensors).")
    String output;

    @Option(names = "--projector", paramLabel = "FILE",
            description = "Start from this projector (safetensors weight/bias; absolute, or relative to the store).")
    String projector;

    @Option(names = "--adapter", paramLabel = "NAME", description = "Start from this PEFT adapter of the store.")
    String adapter;

    @Option(names = "--lora-rank", paramLabel = "R", description = "LoRA rank (default 8).")
    Integer loraRank;

    @Option(names = "--lora-alpha", paramLabel = "A", description = "LoRA alpha (default 16).")
    Double loraAlpha;

    @Option(names = "--lora-targets", paramLabel = "M,M", split = ",",
            description = "Modules to adapt (default q_proj,v_proj).")
    List<String> loraTargets;

    @Option(names = "--lora-dropout", paramLabel = "P",
            description = "LoRA dropout on the adapted modules' inputs while training, in [0, 1) (default 0).")
    Double loraDropout;

    @Option(names = "--lr", paramLabel = "LR", description = "Peak learning rate (default 2e-6).")
    Double lr;

    @Option(names = "--epochs", paramLabel = "N", description = "Epochs (default 3).")
    Integer epochs;

    @Option(names = "--max-steps", paramLabel = "N", description = "Stop after N optimizer steps instead.")
    Long maxSteps;

    @Option(names = "--global-batch", paramLabel = "N", description = "Pairs per optimizer step (default 8).")
    Integer globalBatch;

    @Option(names = "--micro-batch", paramLabel = "N", description = "Pairs per forward pass (default 2).")
    Integer microBatch;

    @Option(names = "--weight-decay", paramLabel = "WD", description = "AdamW's decoupled decay (default 0.01).")
    Double weightDecay;

    @Option(names = "--warmup-ratio", paramLabel = "R", description = "Warmup share of the steps (default 0.03).")
    Double warmupRatio;

    @Option(names = "--lr-schedule", paramLabel = "linear|cosine|constant", description = "After warmup (default "
            + "linear).")
    String lrSchedule;

    @Option(names = "--beta", paramLabel = "B", description = "DPO temperature (default 0.1).")
    Double beta;

    @Option(names = "--gamma", paramLabel = "G", description = "Weight of corrected tokens (default 2; 1 = DPO).")
    Double gamma;

    @Option(names = "--average", description = "Average the weighted log-probs instead of summing them.")
    boolean average;

    @Option(names = "--max-grad-norm", paramLabel = "N", description = "Global-norm clipping (default 1; 0 = off).")
    Double maxGradNorm;

    @Option(names = "--no-shuffle", description = "Keep the dataset's order instead of shuffling each epoch.")
    boolean noShuffle;

    @Option(names = "--seed", paramLabel = "N", description = "Seeds the new tensors and the shuffles (default 0).")
    long seed;

    @Option(names = "--save-every", paramLabel = "N",
            description = "Also checkpoint every N steps (default: at each epoch's end).")
    Integer saveEvery;

    @Option(names = "--precision", paramLabel = "fp32|fp16-mixed", description = "fp32 (default; fp16-mixed needs a "
            + "GPU).")
    String precision;

    @Option(names = "--vision-layer", paramLabel = "L", description = "CLIP hidden state used (default -2).")
    Integer visionLayer;

    @Option(names = "--detach", description = "Print the job and return at once instead of following it.")
    boolean detach;

    @Option(names = "--json", description = "Print one JSON object at the end: the job and every step's metrics.")
    boolean json;

    /** How long the watch may stay broken (the training service restarting) before giving up. */
    private static final Duration RECONNECT_FOR = Duration.ofMinutes(5);

    @Override
    public Integer call() throws InterruptedException {
        StartTrainingRequest request = request();
        ManagedChannel channel = GatewayOptions.open();
        try {
            TrainingJob job = TrainingServiceGrpc.newBlockingStub(channel).withDeadlineAfter(30, TimeUnit.MINUTES)
                    .startTraining(request);
            if (detach) {
                if (json) {
                    System.out.println(Json.of(job));
                } else {
                    System.out.println("training job " + job.getJobId() + " queued; follow it with bin/expo jobs get "
                            + job.getJobId());
                }
                return 0;
            }
            if (!json) {
                System.err.println("training job " + job.getJobId() + " (Ctrl-C stops watching; the job goes on)");
            }
            return follow(channel, job.getJobId());
        } finally {
            GatewayOptions.close(channel);
        }
    }

    private StartTrainingRequest request() {
        StartTrainingRequest.Builder request = StartTrainingRequest.newBuilder().setLanguageModel(languageModel)
                .setVisionTower(visionTower).setDataset(dataset).setOutputModel(output);
        if (projector != null) {
            request.setProjector(projector);
        }
        if (adapter != null) {
            request.setAdapter(adapter);
        }
        LoraSettings.Builder lora = LoraSettings.newBuilder();
        if (loraRank != null) {
            lora.setRank(loraRank);
        }
        if (loraAlpha != null) {
            lora.setAlpha(loraAlpha);
        }
        if (loraTargets != null) {
            lora.addAllTargetModules(loraTargets);
        }
        if (loraDropout != null) {
            lora.setDropout(loraDropout);
        }
        request.setLora(lora);
        DdpoSettings.Builder h = DdpoSettings.newBuilder().setUseAverage(average).setNoShuffle(noShuffle)
                .setSeed(seed);
        positive("--lr", lr);
        positive("--beta", beta);
        positive("--gamma", gamma);
        if (lr != null) {
            h.setLearningRate(lr);
        }
        if (epochs != null) {
            atLeastOne("--epochs", epochs);
            h.setEpochs(epochs);
        }
        if (maxSteps != null) {
            atLeastOne("--max-steps", maxSteps);
            h.setMaxSteps(maxSteps);
        }
        if (globalBatch != null) {
            atLeastOne("--global-batch", globalBatch);
            h.setGlobalBatchSize(globalBatch);
        }
        if (microBatch != null) {
            atLeastOne("--micro-batch", microBatch);
            h.setMicroBatchSize(microBatch);
        }
        if (weightDecay != null) {
            h.setWeightDecay(weightDecay);
        }
        if (warmupRatio != null) {
            h.setWarmupRatio(warmupRatio);
        }
        if (lrSchedule != null) {
            h.setLrSchedule(lrSchedule);
        }
        if (beta != null) {
            h.setBeta(beta);
        }
        if (gamma != null) {
            h.setGamma(gamma);
        }
        if (maxGradNorm != null) {
            h.setMaxGradNorm(maxGradNorm);
        }
        if (saveEvery != null) {
            h.setSaveEvery(saveEvery);
        }
        request.setHyperparameters(h);
        if (precision != null) {
            request.setPrecision(switch (precision.toLowerCase()) {
                case "fp32" -> Precision.PRECISION_FP32;
                case "fp16-mixed", "fp16" -> Precision.PRECISION_FP16_MIXED;
                default -> throw new CliException("--precision must be fp32 or fp16-mixed", 2);
            });
        }
        if (visionLayer != null) {
            request.setVisionLayer(visionLayer);
        }
        return request.build();
    }

    // Zero means "the default" on the wire, so a zero given here would silently become the default: refuse it.
    private static void positive(String option, Double value) {
        if (value != null && !(value > 0)) {
            throw new CliException(option + " must be positive", 2);
        }
    }

    private static void atLeastOne(String option, long value) {
        if (value < 1) {
            throw new CliException(option + " must be at least 1", 2);
        }
    }

    /** Watches to the end, picking the stream up again from the next step if the service restarts under it. */
    private int follow(ManagedChannel channel, String jobId) throws InterruptedException {
        boolean terminal = System.console() != null && !json;
        Map<Long, TrainingStepMetrics> steps = new LinkedHashMap<>();
        ProgressBar bar = null;
        Instant brokenSince = null;
        TrainingJob last = null;
        try {
            while (true) {
                long from = steps.isEmpty() ? 0 : steps.keySet().stream().mapToLong(Long::longValue).max().orElse(0)
                        + 1;
                try {
                    Iterator<TrainingEvent> events = TrainingServiceGrpc.newBlockingStub(channel)
                            .watchJob(WatchTrainingJobRequest.newBuilder().setJobId(jobId).setFromStep(from).build());
                    while (events.hasNext()) {
                        brokenSince = null;
                        TrainingEvent event = events.next();
                        if (event.hasStep()) {
                            TrainingStepMetrics step = event.getStep();
                            steps.put(step.getStep(), step);
                            if (step.getSkipped() && !json) {
                                System.err.printf("step %d: FP16 gradients overflowed at loss scale %.0f; the update "
                                        + "was skipped and the scale halved%n", step.getStep(), step.getLossScale());
                            }
                            if (step.getMicroBatchHalvings() > 0 && !json) {
                                System.err.printf("step %d ran out of memory: micro batch halved %d time(s), now %d "
                                        + "(the global batch is kept)%n", step.getStep(), step.getMicroBatchHalvings(),
                                        step.getMicroBatchSize());
                            }
                            if (terminal) {
                                bar = update(bar, step);
                            } else if (!json) {
                                System.out.println(line(step));
                            }
                        } else {
                            last = event.getJob();
                        }
                    }
                    if (last != null && isFinal(last.getState())) {
                        break;
                    }
                } catch (StatusRuntimeException e) {
                    if (e.getStatus().getCode() != Status.Code.UNAVAILABLE) {
                        throw e;
                    }
                    if (brokenSince == null) {
                        brokenSince = Instant.now();
                        if (!json) {
                            System.err.println("lost the training service (" + e.getStatus().getDescription()
                                    + "); watching again when it is back");
                        }
                    } else if (Duration.between(brokenSince, Instant.now()).compareTo(RECONNECT_FOR) > 0) {
                        throw new CliException("the training service has been unreachable for "
                                + RECONNECT_FOR.toMinutes() + " minutes; job " + jobId + " is durable: see "
                                + "bin/expo jobs get " + jobId + " when it is back", 1);
                    }
                    Thread.sleep(1000);
                }
            }
        } finally {
            if (bar != null) {
                bar.close();
            }
        }
        return finish(last, new ArrayList<>(steps.values()));
    }

    private static boolean isFinal(JobState state) {
        return state == JobState.JOB_STATE_SUCCEEDED || state == JobState.JOB_STATE_FAILED
                || state == JobState.JOB_STATE_CANCELLED;
    }

    private static ProgressBar update(ProgressBar bar, TrainingStepMetrics step) {
        if (bar == null) {
            bar = new ProgressBarBuilder().setTaskName("training").setInitialMax(step.getTotalSteps())
                    .setStyle(ProgressBarStyle.ASCII).setUnit(" steps", 1).setUpdateIntervalMillis(200)
                    .continuousUpdate().build();
        }
        bar.stepTo(step.getStep());
        bar.setExtraMessage(String.format("loss %.4f acc %.2f", step.getLoss(), step.getRewardAccuracy()));
        return bar;
    }

    static String line(TrainingStepMetrics step) {
        return String.format("step %d/%d  epoch %.2f  loss %.4f  acc %.2f  margin %.4f  lr %.3g  grad %.3g  %.1f tok/s",
                step.getStep(), step.getTotalSteps(), step.getEpoch(), step.getLoss(), step.getRewardAccuracy(),
                step.getMargin(), step.getLearningRate(), step.getGradNorm(), step.getTokensPerSecond());
    }

    private int finish(TrainingJob job, List<TrainingStepMetrics> steps) {
        if (json) {
            Map<String, Object> out = new LinkedHashMap<>();
            out.put("job", Json.tree(job));
            List<Object> history = new ArrayList<>();
            for (TrainingStepMetrics step : steps) {
                history.add(Json.tree(step));
            }
            out.put("steps", history);
            System.out.println(Json.of(out));
        }
        return switch (job.getState()) {
            case JOB_STATE_SUCCEEDED -> {
                if (!json) {
                    System.out.printf("%s: %d steps, final loss %.4f; serve it with bin/expo generate --model %s "
                            + "--image FILE%n", job.getRequest().getOutputModel(), steps.size(),
                            steps.isEmpty() ? Double.NaN : steps.getLast().getLoss(), job.getRequest().getOutputModel());
                }
                yield 0;
            }
            case JOB_STATE_CANCELLED -> throw new CliException("training job " + job.getJobId() + " was cancelled; its "
                    + "checkpoints are kept in " + job.getFolder(), 1);
            default -> throw new CliException("training job " + job.getJobId() + " failed: "
                    + job.getError().getMessage(), 1);
        };
    }
}

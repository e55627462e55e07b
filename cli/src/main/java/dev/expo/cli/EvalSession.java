package dev.expo.cli;

import dev.expo.api.v1.EvaluationEvent;
import dev.expo.api.v1.EvaluationOutput;
import dev.expo.api.v1.EvaluationPrompt;
import dev.expo.api.v1.EvaluationRun;
import dev.expo.api.v1.EvaluationServiceGrpc;
import dev.expo.api.v1.JobState;
import dev.expo.api.v1.RunEvaluationRequest;
import dev.expo.api.v1.VariantSummary;
import dev.expo.api.v1.WatchEvaluationRunRequest;
import dev.expo.evaluation.engine.EvaluationReport;
import dev.expo.evaluation.engine.EvaluationSummary;
import dev.expo.evaluation.engine.ScoredOutput;
import dev.expo.evaluation.engine.runs.EvaluationRequest;
import dev.expo.evaluation.engine.runs.EvaluationRunFolder;
import dev.expo.evaluation.engine.stats.MeanInterval;
import dev.expo.evaluation.engine.stats.PairedComparison;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Starts or follows one evaluation run to its end: a progress bar on a terminal, the stream picked up again (the
 * run's outputs replayed) when the gateway restarts under it, then the summary table and, with {@code --out}, the
 * files users read.
 */
final class EvalSession {

    /** How long the stream may stay broken (the gateway restarting) before giving up. */
    private static final Duration RECONNECT_FOR = Duration.ofMinutes(5);

    private final ManagedChannel channel;
    private final boolean json;
    private final Path out;
    private final List<EvaluationPrompt> prompts;
    private final Map<String, EvaluationOutput> outputs = new LinkedHashMap<>();
    private EvaluationRun last;

    EvalSession(ManagedChannel channel, boolean json, Path out, List<EvaluationPrompt> prompts) {
        this.channel = channel;
        this.json = json;
        this.out = out;
        this.prompts = prompts;
    }

    /** Submits the run (bad input fails here, no run made) and follows it, or with detach prints its id. */
    int start(RunEvaluationRequest request, boolean detach) throws InterruptedException {
        Iterator<EvaluationEvent> events = EvaluationServiceGrpc.newBlockingStub(channel).runEvaluation(request);
        EvaluationEvent first = events.next();   // the run as created: a failed check throws here
        last = first.getRun();
        if (detach) {
            System.out.println(json ? Json.of(last) : "evaluation run " + last.getRunId() + " queued; follow it with "
                    + "bin/expo eval watch " + last.getRunId());
            return 0;
        }
        if (!json) {
            System.err.println("evaluation run " + last.getRunId() + ": " + last.getVariantsCount() + " variants x "
                    + last.getPrompts() + " prompts (Ctrl-C stops watching; the run goes on, bin/expo eval cancel "
                    + last.getRunId() + " stops it)");
        }
        return follow(last.getRunId(), events);
    }

    int watch(String runId) throws InterruptedException {
        return follow(runId, null);
    }

    private int follow(String runId, Iterator<EvaluationEvent> firstStream) throws InterruptedException {
        boolean terminal = System.console() != null && !json;
        ProgressBar bar = null;
        Instant brokenSince = null;
        Iterator<EvaluationEvent> events = firstStream;
        try {
            while (last == null || !isFinal(last.getState())) {
                try {
                    if (events == null) {
                        events = EvaluationServiceGrpc.newBlockingStub(channel)
                                .watchRun(WatchEvaluationRunRequest.newBuilder().setRunId(runId).build());
                    }
                    while (events.hasNext()) {
                        brokenSince = null;
                        EvaluationEvent event = events.next();
                        if (event.hasRun()) {
                            last = event.getRun();
                        } else if (event.hasOutput()) {
                            EvaluationOutput output = event.getOutput();
                            outputs.put(output.getVariant() + "\u0000" + output.getPromptId(), output);
                        } else if (event.hasProgress() && terminal) {
                            if (bar == null) {
                                bar = new ProgressBarBuilder().setTaskName("evaluating")
                                        .setInitialMax(event.getProgress().getOutputsTotal())
                                        .setStyle(ProgressBarStyle.ASCII).setUnit(" outputs", 1)
                                        .setUpdateIntervalMillis(200).continuousUpdate().build();
                            }
                            bar.stepTo(outputs.size());
                            bar.setExtraMessage(event.getProgress().getPhase());
                        }
                    }
                    events = null;
                } catch (StatusRuntimeException e) {
                    events = null;
                    if (e.getStatus().getCode() != Status.Code.UNAVAILABLE) {
                        throw e;
                    }
                    if (brokenSince == null) {
                        brokenSince = Instant.now();
                        if (!json) {
                            System.err.println("lost the gateway (" + e.getStatus().getDescription() + "); watching "
                                    + "again when it is back");
                        }
                    } else if (Duration.between(brokenSince, Instant.now()).compareTo(RECONNECT_FOR) > 0) {
                        throw new CliException("the gateway has been unreachable for " + RECONNECT_FOR.toMinutes()
                                + " minutes; run " + runId + " is durable: bin/expo eval get " + runId
                                + " when it is back", 1);
                    }
                    Thread.sleep(1000);
                }
            }
        } finally {
            if (bar != null) {
                bar.stepTo(outputs.size());
                bar.close();
            }
        }
        return finish();
    }

    private int finish() {
        switch (last.getState()) {
            case JOB_STATE_SUCCEEDED -> {
                if (out != null) {
                    write();
                }
                if (json) {
                    System.out.println(Json.of(last));
                } else {
                    System.out.print(table(last));
                    System.out.println("run folder: " + last.getFolder());
                    if (out != null) {
                        System.out.println("wrote " + out.resolve("report.html") + " (chart: report.svg), "
                                + "summary.json, results.jsonl and <variant>/model_outputs.json in " + out);
                    }
                }
                return 0;
            }
            case JOB_STATE_CANCELLED -> throw new CliException("evaluation run " + last.getRunId() + " was cancelled "
                    + "after " + last.getProgress().getOutputsDone() + " of " + last.getProgress().getOutputsTotal()
                    + " outputs; they are kept in " + last.getFolder(), 1);
            default -> throw new CliException("evaluation run " + last.getRunId() + " failed: "
                    + last.getError().getMessage(), 1);
        }
    }

    /** The run's files under --out, its summary recomputed from the outputs (seeded: the same as the gateway's). */
    private void write() {
        List<ScoredOutput> scored = new ArrayList<>();
        for (EvaluationOutput o : outputs.values()) {
            scored.add(new ScoredOutput(o.getPromptId(), o.getVariant(), o.getInstruction(), o.getOutput(),
                    o.getReward(), o.getGeneratedTokens(), o.getFinishReason(), o.getSeqRep4()));
        }
        List<EvaluationRequest.Prompt> requestPrompts = new ArrayList<>();
        for (EvaluationPrompt p : prompts) {
            requestPrompts.add(new EvaluationRequest.Prompt(p.getId(), p.getInstruction(),
                    p.getDataset().isEmpty() ? null : p.getDataset(), null));
        }
        List<EvaluationRequest.Variant> variants = last.getVariantsList().stream()
                .map(name -> new EvaluationRequest.Variant(name, name, null, null, null, null)).toList();
        EvaluationRequest request = new EvaluationRequest(requestPrompts, variants, last.getRewardModel(),
                last.getReferenceVariant(), true, false, false, last.getSummary().getBootstrapResamples(),
                last.getSummary().getSeed());
        EvaluationSummary summary = EvaluationSummary.of(scored, last.getVariantsList(), last.getReferenceVariant(),
                new PairedComparison.Bootstrap(last.getSummary().getBootstrapResamples(), last.getSummary().getSeed(),
                        MeanInterval.CONFIDENCE));
        try {
            EvaluationRunFolder.writeReport(out, request, scored, summary);
        } catch (IOException e) {
            throw new CliException("--out " + out + ": " + e.getMessage(), 1);
        }
    }

    static String table(EvaluationRun run) {
        var summary = run.getSummary();
        StringBuilder table = new StringBuilder();
        table.append(String.format(Locale.ROOT, "%-2s%-16s %-27s %-22s %-22s %7s %8s %9s%n", "", "variant",
                "mean reward [95% CI]", "win rate [95% CI]", "LC win rate [95% CI]", "tokens", "at limit",
                "repeating"));
        for (VariantSummary v : summary.getVariantsList()) {
            table.append(String.format(Locale.ROOT, "%-2s%-16s %-27s %-22s %-22s %7.1f %8s %9s%n",
                    v.getVariant().equals(summary.getBestVariant()) ? "*" : "", v.getVariant(),
                    String.format(Locale.ROOT, "%.4f [%s, %s]", v.getMeanReward(),
                            fixed(v.getRewardInterval().getLower()), fixed(v.getRewardInterval().getUpper())),
                    percentWith(v.getWinRate(), v.getWinRateInterval()),
                    percentWith(v.getLengthControlledWinRate(), v.getLengthControlledWinRateInterval()),
                    v.getMeanGeneratedTokens(), percent(v.getLengthLimitShare()), percent(v.getRepeatingShare())));
        }
        VariantSummary best = summary.getVariantsList().stream()
                .filter(v -> v.getVariant().equals(summary.getBestVariant())).findFirst().orElseThrow();
        table.append(String.format(Locale.ROOT, "best: %s, mean reward %.4f [%s, %s]; win rate %s and LC win rate %s "
                        + "against %s (%d prompts, ties count half)%n", best.getVariant(), best.getMeanReward(),
                fixed(best.getRewardInterval().getLower()), fixed(best.getRewardInterval().getUpper()),
                percent(best.getWinRate()), percent(best.getLengthControlledWinRate()),
                summary.getReferenceVariant(), best.getPairedPrompts()));
        return table.toString();
    }

    private static String fixed(double value) {
        return EvaluationReport.fixed(value, 4);
    }

    private static String percent(double fraction) {
        return EvaluationReport.percent(fraction);
    }

    private static String percentWith(double value, dev.expo.api.v1.ConfidenceInterval interval) {
        if (!Double.isFinite(interval.getLower())) {
            return percent(value);
        }
        return String.format(Locale.ROOT, "%.1f%% [%.1f, %.1f]", value * 100, interval.getLower() * 100,
                interval.getUpper() * 100);
    }

    static boolean isFinal(JobState state) {
        return state == JobState.JOB_STATE_SUCCEEDED || state == JobState.JOB_STATE_FAILED
                || state == JobState.JOB_STATE_CANCELLED;
    }
}

package dev.expo.cli;

import dev.expo.api.v1.CancelEvaluationRunRequest;
import dev.expo.api.v1.EvaluationPrompt;
import dev.expo.api.v1.EvaluationRun;
import dev.expo.api.v1.EvaluationServiceGrpc;
import dev.expo.api.v1.EvaluationVariant;
import dev.expo.api.v1.GetEvaluationRunRequest;
import dev.expo.api.v1.ListEvaluationRunsRequest;
import dev.expo.api.v1.RunEvaluationRequest;
import dev.expo.api.v1.SamplingParams;
import io.grpc.ManagedChannel;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;

/** {@code expo eval}: A/B evaluation runs through the gateway (alone: as 'eval list'). */
@Command(name = "eval", description = {"Evaluation runs: prompts x variants, generated, scored by a reward model, "
        + "with win rates against a reference variant (alone: as 'eval list').",
        "A run is durable: Ctrl-C stops watching, not the run; a gateway that restarts continues it."},
        subcommands = {EvalCommand.Run.class, EvalCommand.Watch.class, EvalCommand.Get.class, EvalCommand.ListRuns.class,
            EvalCommand.Cancel.class})
public class EvalCommand implements Callable<Integer> {

    @Override
    public Integer call() {
        return new ListRuns().call();
    }

    static <T> T withStub(Function<EvaluationServiceGrpc.EvaluationServiceBlockingStub, T> call) {
        ManagedChannel channel = GatewayOptions.open();
        try {
            return call.apply(EvaluationServiceGrpc.newBlockingStub(channel).withDeadlineAfter(30, TimeUnit.SECONDS));
        } finally {
            GatewayOptions.close(channel);
        }
    }

    @Command(name = "run", sortOptions = false, description = "Start a run and follow it to its summary table.")
    static class Run implements Callable<Integer> {

        @Option(names = "--variant", required = true, paramLabel = "NAME=MODEL[+ADAPTER[@SCALE]]",
                description = "A variant (repeatable), e.g. sft=demo-sft, expo=demo-dpo+my-lora@3.")
        List<String> variants;

        @Option(names = "--reference", paramLabel = "NAME", description = "Win rates are against it (default: the "
                + "first variant).")
        String reference;

        @Mixin
        EvalOptions options;

        @Override
        public Integer call() throws InterruptedException {
            List<EvaluationPrompt> prompts = options.readPrompts();
            SamplingParams sampling = options.sampling();
            RunEvaluationRequest.Builder request = options.request(prompts);
            for (String spec : variants) {
                request.addVariants(variant(spec, sampling));
            }
            request.setReferenceVariant(reference != null ? reference : request.getVariants(0).getName());
            ManagedChannel channel = GatewayOptions.open();
            try {
                return new EvalSession(channel, options.json, options.out, prompts).start(request.build(),
                        options.detach);
            } finally {
                GatewayOptions.close(channel);
            }
        }

        static EvaluationVariant variant(String spec, SamplingParams sampling) {
            int equals = spec.indexOf('=');
            if (equals <= 0 || equals == spec.length() - 1) {
                throw new CliException("--variant " + spec + ": expected NAME=MODEL[+ADAPTER[@SCALE]]", 2);
            }
            EvaluationVariant.Builder variant = EvaluationVariant.newBuilder().setName(spec.substring(0, equals))
                    .setSampling(sampling);
            String source = spec.substring(equals + 1);
            int plus = source.indexOf('+');
            if (plus < 0) {
                return variant.setModel(source).build();
            }
            variant.setModel(source.substring(0, plus));
            String adapter = source.substring(plus + 1);
            int at = adapter.indexOf('@');
            if (at >= 0) {
                try {
                    variant.setAdapterScale(Double.parseDouble(adapter.substring(at + 1)));
                } catch (NumberFormatException e) {
                    throw new CliException("--variant " + spec + ": the adapter scale is not a number", 2);
                }
                adapter = adapter.substring(0, at);
            }
            return variant.setAdapter(adapter).build();
        }
    }

    @Command(name = "watch", description = "Follow a run (its outputs so far replayed) to its summary table.")
    static class Watch implements Callable<Integer> {
        @Parameters(paramLabel = "RUN_ID") String runId;

        @Option(names = "--out", paramLabel = "DIR", description = "Also write the run's files here.") Path out;

        @Option(names = "--json", description = "Print the finished run as JSON.") boolean json;

        @Override
        public Integer call() throws InterruptedException {
            ManagedChannel channel = GatewayOptions.open();
            try {
                return new EvalSession(channel, json, out, List.of()).watch(runId);
            } finally {
                GatewayOptions.close(channel);
            }
        }
    }

    @Command(name = "get", description = "A run's state, progress and (once done) its summary table.")
    static class Get implements Callable<Integer> {
        @Parameters(paramLabel = "RUN_ID") String runId;

        @Option(names = "--json", description = "Print the run as JSON.") boolean json;

        @Override
        public Integer call() {
            EvaluationRun run = withStub(stub -> stub.getRun(GetEvaluationRunRequest.newBuilder().setRunId(runId)
                    .build()));
            print(run, json);
            return 0;
        }
    }

    @Command(name = "list", description = "Evaluation runs, newest first.")
    static class ListRuns implements Callable<Integer> {
        @Option(names = "--json", description = "One JSON object per line.") boolean json;

        @Override
        public Integer call() {
            List<EvaluationRun> runs = withStub(stub -> stub.listRuns(ListEvaluationRunsRequest.newBuilder()
                    .setPageSize(1000).build())).getRunsList();
            if (!json && runs.isEmpty()) {
                System.out.println("no evaluation runs (bin/expo eval run or bin/expo sweep starts one)");
            }
            for (EvaluationRun run : runs) {
                System.out.println(json ? Json.of(run) : line(run));
            }
            return 0;
        }
    }

    @Command(name = "cancel", description = "Stop a run; it keeps what it scored and removes the models it made.")
    static class Cancel implements Callable<Integer> {
        @Parameters(paramLabel = "RUN_ID") String runId;

        @Override
        public Integer call() {
            EvaluationRun run = withStub(stub -> stub.cancelRun(CancelEvaluationRunRequest.newBuilder()
                    .setRunId(runId).build()));
            System.out.println(line(run) + " (cancel requested)");
            return 0;
        }
    }

    static String line(EvaluationRun run) {
        String state = run.getState().name().replace("JOB_STATE_", "");
        String line = String.format("%s  %-9s %d/%d outputs  %s vs %s, judged by %s", run.getRunId(), state,
                run.getProgress().getOutputsDone(), run.getProgress().getOutputsTotal(),
                String.join(",", run.getVariantsList()), run.getReferenceVariant(), run.getRewardModel());
        if (run.hasSummary()) {
            line += "  best " + run.getSummary().getBestVariant();
        }
        if (run.hasError()) {
            line += "  error: " + run.getError().getMessage();
        }
        return line;
    }

    static void print(EvaluationRun run, boolean json) {
        if (json) {
            System.out.println(Json.of(run));
            return;
        }
        System.out.println(line(run));
        if (!run.getProgress().getPhase().isEmpty()) {
            System.out.println("now: " + run.getProgress().getPhase());
        }
        if (run.hasSummary()) {
            System.out.print(EvalSession.table(run));
        }
        System.out.println("folder: " + run.getFolder());
    }
}

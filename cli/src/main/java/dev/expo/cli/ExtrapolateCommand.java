package dev.expo.cli;

import dev.expo.api.v1.AlphaSchedule;
import dev.expo.api.v1.ExtrapolateEvent;
import dev.expo.api.v1.ExtrapolateRequest;
import dev.expo.api.v1.ExtrapolationProgress;
import dev.expo.api.v1.ExtrapolationResult;
import dev.expo.api.v1.ExtrapolationServiceGrpc;
import dev.expo.api.v1.ExtrapolationSpec;
import dev.expo.api.v1.LayerGroups;
import dev.expo.api.v1.NonFiniteTensor;
import dev.expo.api.v1.PlanRequest;
import dev.expo.api.v1.PlanResponse;
import dev.expo.api.v1.TensorAlpha;
import dev.expo.api.v1.TensorDtype;
import io.grpc.ClientCall;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ClientCalls;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;

@Command(name = "extrapolate",
        description = {"Make a new model: theta = aligned + alpha * (aligned - base), tensor by tensor.",
            "Alpha is uniform (--alpha), per third of the decoder layers (--layer-alphas 5,10,15), or from a YAML "
                    + "schedule (--schedule, see docs/schedules.md)."},
        sortOptions = false)
public class ExtrapolateCommand implements Callable<Integer> {

    @Option(names = "--base", required = true, paramLabel = "NAME", description = "The base (SFT) model.")
    String base;

    @Option(names = "--aligned", required = true, paramLabel = "NAME", description = "The aligned (DPO) model.")
    String aligned;

    @Option(names = "--output", paramLabel = "NAME", description = "The new model's name (required unless --plan).")
    String output;

    @ArgGroup(exclusive = true, multiplicity = "1")
    ScheduleOptions schedule;

    static class ScheduleOptions {
        @Option(names = "--alpha", paramLabel = "A", description = "One alpha for every tensor (e.g. 12).")
        Double alpha;

        @Option(names = "--layer-alphas", paramLabel = "A,B,C", split = ",",
                description = "Alphas for consecutive groups of decoder layers; three give the seed's thirds "
                        + "(5,10,15).")
        List<Double> layerAlphas;

        @Option(names = "--schedule", paramLabel = "FILE", description = "A YAML schedule file.")
        Path file;
    }

    @Option(names = "--nonlayer-alpha", paramLabel = "A",
            description = "With --layer-alphas: alpha of tensors outside the layers (default: the middle group's).")
    Double nonlayerAlpha;

    @Option(names = "--dtype", paramLabel = "bf16|f16|f32",
            description = "Output dtype (default: the aligned model's).")
    String dtype;

    @Option(names = "--max-shard-size", paramLabel = "SIZE",
            description = "Reshard the output, e.g. 5GB or 500MB (default: the aligned model's layout).")
    String maxShardSize;

    @Option(names = "--plan", description = "Dry run: print every tensor's alpha and write nothing.")
    boolean plan;

    @Option(names = "--overwrite", description = "Replace an existing model of the output name.")
    boolean overwrite;

    @Option(names = "--json", description = "Print the result (or the plan) as one JSON object.")
    boolean json;

    @Option(names = "--timeout", paramLabel = "SECONDS", description = "Give up (and cancel the job) after this long.")
    Double timeoutSeconds;

    @Override
    public Integer call() throws IOException {
        ExtrapolationSpec spec = spec();
        ManagedChannel channel = GatewayOptions.open();
        try {
            return plan ? printPlan(channel, spec) : extrapolate(channel, spec);
        } finally {
            GatewayOptions.close(channel);
        }
    }

    private ExtrapolationSpec spec() throws IOException {
        ExtrapolationSpec.Builder spec = ExtrapolationSpec.newBuilder().setBaseModel(base).setAlignedModel(aligned)
                .setOutputDtype(parseDtype(dtype));
        if (nonlayerAlpha != null && schedule.layerAlphas == null) {
            throw new CliException("--nonlayer-alpha goes with --layer-alphas (in a schedule file, use "
                    + "nonlayer_alpha)", 2);
        }
        if (schedule.alpha != null) {
            spec.setSchedule(AlphaSchedule.newBuilder().setAlpha(schedule.alpha));
        } else if (schedule.layerAlphas != null) {
            AlphaSchedule.Builder layered = AlphaSchedule.newBuilder()
                    .setLayerGroups(LayerGroups.newBuilder().addAllAlphas(schedule.layerAlphas));
            if (nonlayerAlpha != null) {
                layered.setNonlayerAlpha(nonlayerAlpha);
            }
            spec.setSchedule(layered);
        } else {
            try {
                spec.setScheduleYaml(Files.readString(schedule.file));
            } catch (NoSuchFileException e) {
                throw new CliException("schedule file " + schedule.file + " does not exist", 2);
            }
        }
        return spec.build();
    }

    private int printPlan(ManagedChannel channel, ExtrapolationSpec spec) {
        PlanResponse response = ExtrapolationServiceGrpc.newBlockingStub(channel).withDeadlineAfter(5, TimeUnit.MINUTES)
                .plan(PlanRequest.newBuilder().setSpec(spec).build());
        if (json) {
            System.out.println(Json.of(response));
            return 0;
        }
        int width = response.getTensorsList().stream().mapToInt(t -> t.getName().length()).max().orElse(10);
        System.out.printf("%-" + width + "s  %10s  %s%n", "TENSOR", "ALPHA", "FROM");
        for (TensorAlpha tensor : response.getTensorsList()) {
            System.out.printf("%-" + width + "s  %10s  %s%n", tensor.getName(), formatAlpha(tensor.getAlpha()),
                    tensor.getSource());
        }
        System.out.printf("%d tensors, %d decoder layers, output %s, %s%n", response.getTensorsCount(),
                response.getNumLayers(), dtypeName(response.getOutputDtype()), Sizes.bytes(response.getOutputBytes()));
        return 0;
    }

    private int extrapolate(ManagedChannel channel, ExtrapolationSpec spec) {
        if (output == null) {
            throw new CliException("--output NAME is required (or use --plan for a dry run)", 2);
        }
        ExtrapolateRequest request = ExtrapolateRequest.newBuilder().setSpec(spec).setOutputModel(output)
                .setOverwrite(overwrite).setMaxShardBytes(parseSize(maxShardSize)).build();
        io.grpc.CallOptions options = io.grpc.CallOptions.DEFAULT;
        if (timeoutSeconds != null) {
            options = options.withDeadlineAfter((long) (timeoutSeconds * 1000), TimeUnit.MILLISECONDS);
        }
        ClientCall<ExtrapolateRequest, ExtrapolateEvent> call =
                channel.newCall(ExtrapolationServiceGrpc.getExtrapolateMethod(), options);
        // Ctrl-C cancels the call, and with it the job: nothing is left behind.
        Thread cancelOnExit = new Thread(() -> call.cancel("interrupted", null));
        Runtime.getRuntime().addShutdownHook(cancelOnExit);
        boolean terminal = System.console() != null && !json;
        ProgressBar bar = null;
        String jobId = "";
        try {
            Iterator<ExtrapolateEvent> events = ClientCalls.blockingServerStreamingCall(call, request);
            while (events.hasNext()) {
                ExtrapolateEvent event = events.next();
                jobId = event.getJobId();
                if (event.hasProgress() && terminal) {
                    bar = update(bar, event.getProgress());
                }
                if (event.hasResult()) {
                    if (bar != null) {
                        bar.stepTo(bar.getMax());
                        bar.close();
                        bar = null;
                    }
                    printResult(jobId, event.getResult());
                    return 0;
                }
            }
            throw new CliException("the stream ended without a result (job " + jobId + ")", 1);
        } catch (StatusRuntimeException e) {
            if (e.getStatus().getCode() == Status.Code.DEADLINE_EXCEEDED) {
                throw new CliException("gave up after --timeout " + timeoutSeconds + " s; job " + jobId
                        + " was cancelled and nothing was written", 1);
            }
            throw e;
        } finally {
            if (bar != null) {
                bar.close();
            }
            try {
                Runtime.getRuntime().removeShutdownHook(cancelOnExit);
            } catch (IllegalStateException shuttingDown) {
                // Already exiting: the hook runs.
            }
        }
    }

    private ProgressBar update(ProgressBar bar, ExtrapolationProgress progress) {
        if (progress.getBytesTotal() == 0) {
            return bar;
        }
        if (bar == null) {
            bar = new ProgressBarBuilder().setTaskName("extrapolating").setInitialMax(progress.getBytesTotal())
                    .setStyle(ProgressBarStyle.ASCII).setUnit(" MiB", 1 << 20).showSpeed()
                    .setUpdateIntervalMillis(200).continuousUpdate().build();
        }
        bar.stepTo(progress.getBytesDone());
        bar.setExtraMessage(progress.getTensorsDone() + "/" + progress.getTensorsTotal() + " tensors");
        return bar;
    }

    private void printResult(String jobId, ExtrapolationResult result) {
        double seconds = result.getDuration().getSeconds() + result.getDuration().getNanos() / 1e9;
        if (json) {
            Map<String, Object> out = new LinkedHashMap<>();
            out.put("job_id", jobId);
            out.put("output_model", result.getOutputModel());
            out.put("tensor_count", result.getTensorCount());
            out.put("output_bytes", result.getOutputBytes());
            out.put("shard_count", result.getShardCount());
            out.put("output_dtype", dtypeName(result.getOutputDtype()));
            out.put("input_bytes", result.getInputBytes());
            out.put("seconds", seconds);
            out.put("non_finite_tensors", result.getNonFiniteTensorsList().stream().map(t -> Map.of(
                    "name", t.getName(), "nan_count", t.getNanCount(), "inf_count", t.getInfCount())).toList());
            System.out.println(Json.of(out));
            return;
        }
        System.out.printf("%s: %d tensors, %s (%s, %d file%s) in %s%n", result.getOutputModel(),
                result.getTensorCount(), Sizes.bytes(result.getOutputBytes()), dtypeName(result.getOutputDtype()),
                result.getShardCount(), result.getShardCount() == 1 ? "" : "s", Sizes.seconds(seconds));
        for (NonFiniteTensor tensor : result.getNonFiniteTensorsList()) {
            System.err.printf("warning: %s has %d NaN and %d infinite values (alpha too large for the dtype?)%n",
                    tensor.getName(), tensor.getNanCount(), tensor.getInfCount());
        }
    }

    static TensorDtype parseDtype(String dtype) {
        if (dtype == null) {
            return TensorDtype.TENSOR_DTYPE_UNSPECIFIED;
        }
        return switch (dtype.toLowerCase()) {
            case "bf16", "bfloat16" -> TensorDtype.TENSOR_DTYPE_BF16;
            case "f16", "fp16", "float16" -> TensorDtype.TENSOR_DTYPE_F16;
            case "f32", "fp32", "float32" -> TensorDtype.TENSOR_DTYPE_F32;
            default -> throw new CliException("--dtype must be bf16, f16 or f32, not \"" + dtype + "\"", 2);
        };
    }

    static String dtypeName(TensorDtype dtype) {
        return dtype == TensorDtype.TENSOR_DTYPE_UNSPECIFIED ? "mixed" : dtype.name().replace("TENSOR_DTYPE_", "");
    }

    /** "5GB", "500MB", "2GiB", or plain bytes. */
    static long parseSize(String size) {
        if (size == null) {
            return 0;
        }
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("(?i)\\s*([0-9.]+)\\s*([kmgt]?i?b?)\\s*")
                .matcher(size);
        if (!m.matches()) {
            throw new CliException("--max-shard-size must look like 5GB or 500MB, not \"" + size + "\"", 2);
        }
        double value = Double.parseDouble(m.group(1));
        String unit = m.group(2).toUpperCase();
        boolean binary = unit.contains("I");
        double base = binary ? 1024 : 1000;
        int power = unit.isEmpty() || unit.equals("B") ? 0 : "KMGT".indexOf(unit.charAt(0)) + 1;
        long bytes = (long) (value * Math.pow(base, power));
        if (bytes <= 0) {
            throw new CliException("--max-shard-size must be positive", 2);
        }
        return bytes;
    }

    private static String formatAlpha(double alpha) {
        return alpha == Math.rint(alpha) && Math.abs(alpha) < 1e15 ? String.valueOf((long) alpha)
                : String.valueOf(alpha);
    }
}

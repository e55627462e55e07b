package dev.expo.cli;

import dev.expo.api.v1.CancelExtrapolationJobRequest;
import dev.expo.api.v1.ExtrapolationJob;
import dev.expo.api.v1.ExtrapolationServiceGrpc;
import dev.expo.api.v1.GetExtrapolationJobRequest;
import dev.expo.api.v1.JobState;
import dev.expo.api.v1.ListExtrapolationJobsRequest;
import dev.expo.api.v1.ListExtrapolationJobsResponse;
import dev.expo.api.v1.CancelTrainingJobRequest;
import dev.expo.api.v1.GetTrainingJobRequest;
import dev.expo.api.v1.ListTrainingJobsRequest;
import dev.expo.api.v1.ListTrainingJobsResponse;
import dev.expo.api.v1.TrainingJob;
import dev.expo.api.v1.TrainingServiceGrpc;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;

/** {@code expo jobs} alone lists them, as {@code expo jobs list} does. */
@Command(name = "jobs", description = "Extrapolation and training jobs: list, inspect, cancel (alone: as 'jobs "
        + "list').",
        subcommands = {JobsCommand.ListJobs.class, JobsCommand.GetJob.class, JobsCommand.CancelJob.class})
public class JobsCommand implements Callable<Integer> {

    @Override
    public Integer call() {
        return new ListJobs().call();
    }

    static <T> T withStub(Function<ExtrapolationServiceGrpc.ExtrapolationServiceBlockingStub, T> call) {
        ManagedChannel channel = GatewayOptions.open();
        try {
            return call.apply(ExtrapolationServiceGrpc.newBlockingStub(channel).withDeadlineAfter(30, TimeUnit.SECONDS));
        } finally {
            GatewayOptions.close(channel);
        }
    }

    static <T> T withTraining(Function<TrainingServiceGrpc.TrainingServiceBlockingStub, T> call) {
        ManagedChannel channel = GatewayOptions.open();
        try {
            return call.apply(TrainingServiceGrpc.newBlockingStub(channel).withDeadlineAfter(30, TimeUnit.SECONDS));
        } finally {
            GatewayOptions.close(channel);
        }
    }

    /** An extrapolation job of that id, else a training job: ids are UUIDs, so at most one of them exists. */
    static void getOrTrain(String jobId, boolean json, Function<ExtrapolationServiceGrpc.ExtrapolationServiceBlockingStub,
            ExtrapolationJob> extrapolation, Function<TrainingServiceGrpc.TrainingServiceBlockingStub,
            TrainingJob> training) {
        ExtrapolationJob job;
        try {
            job = withStub(extrapolation);
        } catch (StatusRuntimeException e) {
            if (e.getStatus().getCode() != Status.Code.NOT_FOUND) {
                throw e;
            }
            try {
                print(withTraining(training), json);
                return;
            } catch (StatusRuntimeException notTraining) {
                if (notTraining.getStatus().getCode() == Status.Code.NOT_FOUND) {
                    throw new CliException("no extrapolation or training job \"" + jobId + "\" (bin/expo jobs "
                            + "lists them)", 1);
                }
                throw notTraining;
            }
        }
        print(job, json);
    }

    static void print(TrainingJob job, boolean json) {
        if (json) {
            System.out.println(Json.of(job));
            return;
        }
        String outcome = switch (job.getState()) {
            case JOB_STATE_FAILED -> job.getError().getMessage();
            case JOB_STATE_RUNNING, JOB_STATE_SUCCEEDED, JOB_STATE_CANCELLED -> job.hasLatest()
                    ? TrainCommand.line(job.getLatest()) : "";
            default -> "";
        };
        System.out.printf("%-36s  %-9s  %-20s  %-24s  training: %s%n", job.getJobId(),
                job.getState().name().replace("JOB_STATE_", "").toLowerCase(),
                Instant.ofEpochSecond(job.getCreateTime().getSeconds()).toString(),
                job.getRequest().getOutputModel(), outcome);
    }

    static void print(ExtrapolationJob job, boolean json) {
        if (json) {
            System.out.println(Json.of(job));
            return;
        }
        String outcome = switch (job.getState()) {
            case JOB_STATE_SUCCEEDED -> Sizes.bytes(job.getResult().getOutputBytes());
            case JOB_STATE_FAILED -> job.getError().getMessage();
            case JOB_STATE_RUNNING -> job.getProgress().getTensorsDone() + "/" + job.getProgress().getTensorsTotal()
                    + " tensors";
            default -> "";
        };
        System.out.printf("%-36s  %-9s  %-20s  %-24s  %s%n", job.getJobId(),
                job.getState().name().replace("JOB_STATE_", "").toLowerCase(),
                Instant.ofEpochSecond(job.getCreateTime().getSeconds()).toString(),
                job.getRequest().getOutputModel(), outcome);
    }

    @Command(name = "list", description = "List jobs, newest first.")
    static class ListJobs implements Callable<Integer> {
        @Option(names = "--state", paramLabel = "STATE",
                description = "Only jobs in this state: queued, running, succeeded, failed, cancelled.")
        String state;

        @Option(names = "--json", description = "Print one JSON object: {\"jobs\": [...]}.")
        boolean json;

        @Override
        public Integer call() {
            JobState wanted = JobState.JOB_STATE_UNSPECIFIED;
            if (state != null) {
                try {
                    wanted = JobState.valueOf("JOB_STATE_" + state.toUpperCase());
                } catch (IllegalArgumentException e) {
                    throw new CliException("--state must be queued, running, succeeded, failed or cancelled", 2);
                }
            }
            ListExtrapolationJobsRequest request = ListExtrapolationJobsRequest.newBuilder().setState(wanted)
                    .setPageSize(1000).build();
            ListExtrapolationJobsResponse response = withStub(stub -> stub.listJobs(request));
            ListTrainingJobsResponse training = withTraining(stub -> stub.listJobs(ListTrainingJobsRequest.newBuilder()
                    .setState(request.getState()).setPageSize(1000).build()));
            if (json) {
                Map<String, Object> out = new LinkedHashMap<>();
                out.put("jobs", response.getJobsList().stream().map(Json::tree).toList());
                out.put("training_jobs", training.getJobsList().stream().map(Json::tree).toList());
                System.out.println(Json.of(out));
            } else if (response.getJobsCount() == 0 && training.getJobsCount() == 0) {
                System.out.println("No extrapolation or training jobs.");
            } else {
                response.getJobsList().forEach(job -> print(job, false));
                training.getJobsList().forEach(job -> print(job, false));
            }
            return 0;
        }
    }

    @Command(name = "get", description = "Show one job.")
    static class GetJob implements Callable<Integer> {
        @Parameters(paramLabel = "JOB_ID")
        String jobId;

        @Option(names = "--json", description = "Print the job as JSON.")
        boolean json;

        @Override
        public Integer call() {
            getOrTrain(jobId, json, stub -> stub.getJob(GetExtrapolationJobRequest.newBuilder().setJobId(jobId).build()),
                    stub -> stub.getJob(GetTrainingJobRequest.newBuilder().setJobId(jobId).build()));
            return 0;
        }
    }

    @Command(name = "cancel", description = "Cancel a queued or running job. An extrapolation's output is removed; a "
            + "training job stops after its current step and keeps its checkpoints.")
    static class CancelJob implements Callable<Integer> {
        @Parameters(paramLabel = "JOB_ID")
        String jobId;

        @Option(names = "--json", description = "Print the job as JSON.")
        boolean json;

        @Override
        public Integer call() {
            getOrTrain(jobId, json,
                    stub -> stub.cancelJob(CancelExtrapolationJobRequest.newBuilder().setJobId(jobId).build()),
                    stub -> stub.cancelJob(CancelTrainingJobRequest.newBuilder().setJobId(jobId).build()));
            return 0;
        }
    }
}

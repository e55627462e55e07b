package dev.expo.cli;

import dev.expo.api.v1.CancelExtrapolationJobRequest;
import dev.expo.api.v1.ExtrapolationJob;
import dev.expo.api.v1.ExtrapolationServiceGrpc;
import dev.expo.api.v1.GetExtrapolationJobRequest;
import dev.expo.api.v1.JobState;
import dev.expo.api.v1.ListExtrapolationJobsRequest;
import dev.expo.api.v1.ListExtrapolationJobsResponse;
import io.grpc.ManagedChannel;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.time.Instant;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;

/** {@code expo jobs} alone lists them, as {@code expo jobs list} does. */
@Command(name = "jobs", description = "Extrapolation jobs: list, inspect, cancel (alone: as 'jobs list').",
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
            if (json) {
                System.out.println(Json.of(response));
            } else if (response.getJobsCount() == 0) {
                System.out.println("No extrapolation jobs.");
            } else {
                response.getJobsList().forEach(job -> print(job, false));
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
            print(withStub(stub -> stub.getJob(GetExtrapolationJobRequest.newBuilder().setJobId(jobId).build())), json);
            return 0;
        }
    }

    @Command(name = "cancel", description = "Cancel a queued or running job; its output is removed.")
    static class CancelJob implements Callable<Integer> {
        @Parameters(paramLabel = "JOB_ID")
        String jobId;

        @Option(names = "--json", description = "Print the job as JSON.")
        boolean json;

        @Override
        public Integer call() {
            print(withStub(stub -> stub.cancelJob(CancelExtrapolationJobRequest.newBuilder().setJobId(jobId).build())),
                    json);
            return 0;
        }
    }
}

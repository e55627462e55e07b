package dev.expo.training.engine.jobs;

import dev.expo.common.ExpoException;
import dev.expo.training.engine.data.DatasetStore;
import dev.expo.training.engine.optim.LearningRateSchedule;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Durable jobs: a job is a folder with its request, state, metrics and checkpoints; a job stopped mid-run (the
 * service going down) resumes from its last checkpoint in a new TrainingJobs and ends with the same adapter, to the
 * bit, as a run that was never stopped.
 */
class TrainingJobsTest {

    static TrainingRequest request(String output) {
        return request(output, "rlhfv");
    }

    static TrainingRequest request(String output, String dataset) {
        // 4 rows, global 2: 2 steps an epoch, 2 epochs, shuffled; LoRA dropout (its masks must come back on resume);
        // a checkpoint after every step.
        return new TrainingRequest("llm", "clip", null, null, dataset, output, 4, 8, List.of("q_proj", "v_proj"), 0.1,
                1e-3, 2, 0, 2, 1, 0.01, 0.25, LearningRateSchedule.Kind.COSINE, 0.1, 2.0, false, 1.0, true, 3, 1, -2,
                false);
    }

    static final TrainingJobs.Observer QUIET = new TrainingJobs.Observer() {
        @Override
        public void onStep(TrainingJob job, TrainingJob.Step step) {
        }

        @Override
        public void onFinished(TrainingJob job) {
        }
    };

    static void await(TrainingJob job) throws InterruptedException {
        Instant deadline = Instant.now().plus(Duration.ofMinutes(3));
        while (!job.state().isFinal() && Instant.now().isBefore(deadline)) {
            Thread.sleep(50);
        }
        assertThat(job.state()).isEqualTo(TrainingJob.State.SUCCEEDED);
    }

    @Test
    void aStoppedJobResumesFromItsCheckpointToTheSameAdapter(@TempDir Path root) throws Exception {
        DatasetStore datasets = TrainingRunTest.storeWithRlhfv(root);
        // Uninterrupted.
        try (TrainingJobs jobs = new TrainingJobs(datasets.store(), datasets, 4, QUIET)) {
            TrainingJob job = jobs.submit(request("straight"));
            await(job);
            assertThat(job.steps()).hasSize(4);
            assertThat(job.checkpoints()).containsExactly("checkpoint-1", "checkpoint-2", "checkpoint-3",
                    "checkpoint-4");
            assertThat(Files.readAllLines(job.dir().resolve("metrics.jsonl"))).hasSize(4);
            assertThat(job.dir().resolve("checkpoint-2/trainer_state.json")).exists();
            assertThat(job.dir().resolve("checkpoint-2/optimizer.safetensors")).exists();
            // Two epochs: the first one's model is published beside the output, as the seed saves each epoch.
            assertThat(datasets.store().exists(TrainingRun.epochModel("straight", 1))).isTrue();
            assertThat(datasets.store().exists(TrainingRun.epochModel("straight", 2))).isFalse();
        }
        // Stopped after its second step, then resumed by a new TrainingJobs over the same store.
        String id;
        CountDownLatch twoSteps = new CountDownLatch(2);
        TrainingJobs first = new TrainingJobs(datasets.store(), datasets, 4, new TrainingJobs.Observer() {
            @Override
            public void onStep(TrainingJob job, TrainingJob.Step step) {
                twoSteps.countDown();
            }

            @Override
            public void onFinished(TrainingJob job) {
            }
        });
        TrainingJob stopped = first.submit(request("resumed"));
        id = stopped.id();
        assertThat(twoSteps.await(2, TimeUnit.MINUTES)).isTrue();
        first.close();
        assertThat(stopped.state()).isEqualTo(TrainingJob.State.RUNNING);
        assertThat(datasets.store().exists("resumed")).isFalse();
        try (TrainingJobs second = new TrainingJobs(datasets.store(), datasets, 4, QUIET)) {
            List<TrainingJob> resumed = second.recover();
            assertThat(resumed).extracting(TrainingJob::id).containsExactly(id);
            TrainingJob job = second.get(id);
            await(job);
            assertThat(job.steps()).extracting(TrainingJob.Step::step).containsExactly(1L, 2L, 3L, 4L);
            assertThat(second.list()).hasSize(2);
        }
        assertThat(Files.readAllBytes(root.resolve("resumed/adapter/adapter_model.safetensors")))
                .isEqualTo(Files.readAllBytes(root.resolve("straight/adapter/adapter_model.safetensors")));
        assertThat(Files.readAllBytes(root.resolve("resumed-epoch1/projector.safetensors")))
                .isEqualTo(Files.readAllBytes(root.resolve("straight-epoch1/projector.safetensors")));
        assertThat(Files.readAllBytes(root.resolve("resumed/projector.safetensors")))
                .isEqualTo(Files.readAllBytes(root.resolve("straight/projector.safetensors")));
    }

    @Test
    void badRequestsCreateNoJobAndCancelKeepsTheCheckpoints(@TempDir Path root) throws Exception {
        DatasetStore datasets = TrainingRunTest.storeWithRlhfv(root);
        List<TrainingJob> finished = new ArrayList<>();
        try (TrainingJobs jobs = new TrainingJobs(datasets.store(), datasets, 0, new TrainingJobs.Observer() {
            @Override
            public void onStep(TrainingJob job, TrainingJob.Step step) {
                if (step.step() == 1) {
                    jobs(job);
                }
            }

            @Override
            public void onFinished(TrainingJob job) {
                finished.add(job);
            }
        })) {
            holder = jobs;
            assertThatThrownBy(() -> jobs.submit(request("x", "missing")))
                    .isInstanceOfSatisfying(ExpoException.class,
                            e -> assertThat(e.kind()).isEqualTo(ExpoException.Kind.NOT_FOUND));
            assertThat(jobs.list()).isEmpty();
            TrainingJob job = jobs.submit(request("cancelled"));
            // The queue holds nothing behind the running job (maxQueued 0).
            assertThatThrownBy(() -> jobs.submit(request("another")))
                    .isInstanceOfSatisfying(ExpoException.class,
                            e -> assertThat(e.kind()).isEqualTo(ExpoException.Kind.RESOURCE_EXHAUSTED));
            Instant deadline = Instant.now().plus(Duration.ofMinutes(2));
            while (!job.state().isFinal() && Instant.now().isBefore(deadline)) {
                Thread.sleep(50);
            }
            assertThat(job.state()).isEqualTo(TrainingJob.State.CANCELLED);
            assertThat(job.checkpoints()).contains("checkpoint-1");
            assertThat(datasets.store().exists("cancelled")).isFalse();
            assertThat(finished).containsExactly(job);
            assertThat(Files.readString(job.dir().resolve("state.json"))).contains("CANCELLED");
        }
    }

    private TrainingJobs holder;

    private void jobs(TrainingJob job) {
        holder.cancel(job.id());
    }
}

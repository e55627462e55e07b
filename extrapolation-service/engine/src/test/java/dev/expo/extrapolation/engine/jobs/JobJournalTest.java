package dev.expo.extrapolation.engine.jobs;

import dev.expo.common.ExpoException;
import dev.expo.common.store.ModelStore;
import dev.expo.extrapolation.engine.ExtrapolationSpec;
import dev.expo.extrapolation.engine.Extrapolator;
import dev.expo.extrapolation.engine.Planner;
import dev.expo.extrapolation.engine.TestStore;
import dev.expo.extrapolation.engine.kernel.ExtrapolationKernel;
import dev.expo.extrapolation.engine.schedule.AlphaSchedule;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/** Unfinished jobs are on disk while they run, gone when they end, and shown as failed by the next process. */
class JobJournalTest {

    @TempDir
    Path root;

    private ExtrapolationJobs jobs(ModelStore store, Path journal) {
        return new ExtrapolationJobs(new Planner(store), new Extrapolator(store, ExtrapolationKernel.best(),
                new Extrapolator.Settings(2, 1024, 1 << 20)), new ExtrapolationJobs.Limits(1, 4, 10), job -> { },
                new JobJournal(journal));
    }

    /** The "encoded order" of these tests: the output model's name. */
    private static ExtrapolationRequest decode(byte[] order) {
        return new ExtrapolationRequest(new ExtrapolationSpec("sft", "dpo", AlphaSchedule.uniform(12), null),
                new String(order, StandardCharsets.UTF_8), false, 0);
    }

    @Test
    void aFinishedJobLeavesNoEntryAndAnInterruptedOneIsRestoredAsFailed() throws Exception {
        ModelStore store = TestStore.with(root, "sft=tiny-llama-sft", "dpo=tiny-llama-dpo");
        Path journal = root.resolve(".jobs/extrapolation");
        try (ExtrapolationJobs first = jobs(store, journal)) {
            ExtrapolationJob done = first.submit(decode("expo".getBytes(StandardCharsets.UTF_8)), null,
                    "expo".getBytes(StandardCharsets.UTF_8));
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (!done.state().isFinal() && System.nanoTime() < deadline) {
                Thread.sleep(20);
            }
            assertThat(done.state()).isEqualTo(JobState.SUCCEEDED);
            assertThat(journal).isEmptyDirectory();
        }

        // A process killed mid-job leaves its entry (written here as that process wrote it), and a torn temp file.
        new JobJournal(journal).opened("job-killed", java.time.Instant.parse("2026-12-07T10:00:00Z"),
                "expo-2".getBytes(StandardCharsets.UTF_8));
        Files.writeString(journal.resolve("job-torn.tmp"), "half");
        Files.writeString(journal.resolve("job-garbage.job"), "x");
        try (ExtrapolationJobs next = jobs(store, journal)) {
            assertThat(next.restoreInterrupted(JobJournalTest::decode)).isEqualTo(1);
            ExtrapolationJob restored = next.get("job-killed");
            assertThat(restored.state()).isEqualTo(JobState.FAILED);
            assertThat(restored.outputModel()).isEqualTo("expo-2");
            assertThat(restored.createTime()).isEqualTo(java.time.Instant.parse("2026-12-07T10:00:00Z"));
            assertThat(restored.failure().kind()).isEqualTo(ExpoException.Kind.UNAVAILABLE);
            assertThat(restored.failure().message()).contains("stopped before this job finished", "expo-2",
                    "run it again");
            assertThat(journal).isEmptyDirectory();
            assertThat(next.restoreInterrupted(JobJournalTest::decode)).isZero();
        }
    }
}

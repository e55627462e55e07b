package dev.expo.e2e;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.expo.api.v1.GetTrainingJobRequest;
import dev.expo.api.v1.JobState;
import dev.expo.api.v1.TrainingEvent;
import dev.expo.api.v1.TrainingJob;
import dev.expo.api.v1.TrainingServiceGrpc;
import dev.expo.api.v1.WatchTrainingJobRequest;
import dev.expo.checkpoint.SafetensorsFile;
import dev.expo.checkpoint.TensorInfo;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.Iterator;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.offset;

/**
 * Training through the running stack as a user drives it: the fixtures' DDPO step golden through bin/expo train and
 * the output served at once; kill -9 of the training service mid-job, then a restart, ends with the same adapter as
 * a run never interrupted.
 */
@ExtendWith(StackExtension.class)
class TrainingIT {

    private static final ObjectMapper JSON = new ObjectMapper();

    @BeforeAll
    static void models(Stack stack) {
        stack.addModel("tiny-llama-sft", "tiny-llama-sft");
        stack.addModel("tiny-clip-vision", "tiny-clip-vision");
        stack.addModel("ddpo-adapter", "ddpo-multimodal/adapter");
    }

    private static JsonNode lastJsonLine(Cli.Result result) throws Exception {
        return JSON.readTree(result.stdout().strip().lines().reduce((a, b) -> b).orElseThrow());
    }

    @Test
    void theGoldenStepHoldsThroughBinExpoTrainAndTheOutputIsServed(Stack stack) throws Exception {
        JsonNode golden = JSON.readTree(stack.fixture("ddpo-multimodal/golden/step.json").toFile());
        StringBuilder lines = new StringBuilder();
        for (JsonNode example : golden.get("examples")) {
            ObjectNode row = JSON.createObjectNode();
            row.put("prompt", example.get("prompt").asText());
            row.put("chosen_response", example.get("chosen").asText());
            row.put("rejected_response", example.get("rejected").asText());
            row.put("image_path", stack.fixture(example.get("image").asText()).toString());
            lines.append(JSON.writeValueAsString(row)).append('\n');
        }
        Path source = Files.createDirectories(stack.store.resolve("datasets/raw")).resolve("golden.jsonl");
        Files.writeString(source, lines);
        Cli.Result preprocess = Cli.run(stack, "datasets", "preprocess", "--source", "raw/golden.jsonl",
                "--tokenizer-model", "tiny-llama-sft", "--output", "golden-pairs");
        assertThat(preprocess.exitCode()).as(preprocess.toString()).isZero();

        Cli.Result train = Cli.run(stack, "train", "--language-model", "tiny-llama-sft", "--vision-tower",
                "tiny-clip-vision", "--dataset", "golden-pairs", "--output", "golden-trained",
                "--projector", stack.fixture("ddpo-multimodal/projector.safetensors").toString(),
                "--adapter", "ddpo-adapter", "--lr", "0.001", "--lr-schedule", "constant", "--warmup-ratio", "0",
                "--weight-decay", "0.01", "--max-grad-norm", "0", "--no-shuffle", "--epochs", "1",
                "--global-batch", "2", "--micro-batch", "2", "--beta", "0.1", "--gamma", "2", "--json");
        assertThat(train.exitCode()).as(train.toString()).isZero();
        JsonNode out = lastJsonLine(train);
        assertThat(out.at("/job/state").asText()).isEqualTo("JOB_STATE_SUCCEEDED");
        JsonNode step = out.get("steps").get(0);
        JsonNode results = golden.get("results");
        assertThat(step.get("loss").asDouble()).isCloseTo(results.get("loss").asDouble(), offset(1e-4));
        assertThat(step.get("policy_chosen_logp").asDouble())
                .isCloseTo(mean(results.get("policy_chosen_logps")), offset(1e-2));
        assertThat(step.get("reference_rejected_logp").asDouble())
                .isCloseTo(mean(results.get("reference_rejected_logps")), offset(1e-2));
        assertThat(step.get("reward_accuracy").asDouble()).isZero();
        // Every trainable tensor after the step is torch's (the update is ~ -lr * sign(grad): every gradient's sign).
        try (SafetensorsFile expected = SafetensorsFile.open(stack.fixture("ddpo-multimodal/golden/step.safetensors"));
             SafetensorsFile adapter = SafetensorsFile.open(stack.store.resolve(
                     "golden-trained/adapter/adapter_model.safetensors"));
             SafetensorsFile projector = SafetensorsFile.open(stack.store.resolve(
                     "golden-trained/projector.safetensors"))) {
            int checked = 0;
            for (TensorInfo info : expected.tensors()) {
                if (!info.name().startsWith("param_after.")) {
                    continue;
                }
                String name = info.name().substring("param_after.".length());
                float[] actual = name.startsWith("projector.")
                        ? projector.tensor(name.substring("projector.".length())).toFloats()
                        : adapter.tensor(name).toFloats();
                float[] want = expected.tensor(info.name()).toFloats();
                for (int i = 0; i < want.length; i++) {
                    assertThat((double) actual[i]).as("%s[%d]", name, i).isCloseTo(want[i], offset(1e-6));
                }
                checked++;
            }
            assertThat(checked).isEqualTo(26);
        }
        Cli.Result generate = Cli.run(stack, "generate", "--model", "golden-trained", "--image",
                stack.fixture("images/img0_48x40.png").toString(), "--prompt", "What is in the image?",
                "--max-new-tokens", "4", "--json");
        assertThat(generate.exitCode()).as(generate.toString()).isZero();
        assertThat(lastJsonLine(generate).get("token_ids").size()).isBetween(1, 4);
    }

    private static double mean(JsonNode values) {
        double sum = 0;
        for (JsonNode v : values) {
            sum += v.asDouble();
        }
        return sum / values.size();
    }

    @Test
    void killMinus9MidJobThenARestartFinishesWithTheSameAdapter(Stack stack) throws Exception {
        Cli.Result preprocess = Cli.run(stack, "datasets", "preprocess", "--source",
                stack.fixture("rlhfv/rlhfv_synth.parquet").toString(), "--tokenizer-model", "tiny-llama-sft",
                "--output", "rlhfv-all");
        assertThat(preprocess.exitCode()).as(preprocess.toString()).isZero();
        String[] common = {"train", "--language-model", "tiny-llama-sft", "--vision-tower", "tiny-clip-vision",
            "--dataset", "rlhfv-all", "--lr", "0.001", "--epochs", "3", "--global-batch", "2", "--micro-batch", "1",
            "--save-every", "3", "--seed", "7", "--lr-schedule", "cosine", "--warmup-ratio", "0.1", "--json"};
        Cli.Result straight = Cli.run(stack, concat(common, "--output", "rlhfv-straight"));
        assertThat(straight.exitCode()).as(straight.toString()).isZero();
        long total = lastJsonLine(straight).get("steps").size();
        assertThat(total).isEqualTo(30);   // 19 rows, batch 2: 10 steps an epoch

        Cli.Result detached = Cli.run(stack, concat(common, "--output", "rlhfv-resumed", "--detach"));
        assertThat(detached.exitCode()).as(detached.toString()).isZero();
        String jobId = lastJsonLine(detached).get("job_id").asText();
        var training = TrainingServiceGrpc.newBlockingStub(stack.gateway());
        Iterator<TrainingEvent> events = training.withDeadlineAfter(2, TimeUnit.MINUTES)
                .watchJob(WatchTrainingJobRequest.newBuilder().setJobId(jobId).build());
        long seen = 0;
        while (seen < 8 && events.hasNext()) {
            TrainingEvent event = events.next();
            if (event.hasStep()) {
                seen = event.getStep().getStep();
            }
        }
        assertThat(seen).as("steps seen before the kill").isBetween(8L, total - 1);
        stack.killAndRestart("training-service");

        TrainingJob job = training.getJob(GetTrainingJobRequest.newBuilder().setJobId(jobId).build());
        Instant deadline = Instant.now().plus(Duration.ofMinutes(3));
        while (job.getState() != JobState.JOB_STATE_SUCCEEDED && job.getState() != JobState.JOB_STATE_FAILED
                && Instant.now().isBefore(deadline)) {
            Thread.sleep(200);
            job = training.getJob(GetTrainingJobRequest.newBuilder().setJobId(jobId).build());
        }
        assertThat(job.getState()).as(job.toString()).isEqualTo(JobState.JOB_STATE_SUCCEEDED);
        assertThat(job.getLatest().getStep()).isEqualTo(total);
        for (String file : new String[] {"adapter/adapter_model.safetensors", "projector.safetensors"}) {
            assertThat(Files.readAllBytes(stack.store.resolve("rlhfv-resumed").resolve(file))).as(file)
                    .isEqualTo(Files.readAllBytes(stack.store.resolve("rlhfv-straight").resolve(file)));
        }
        Cli.Result jobs = Cli.run(stack, "jobs", "list", "--json");
        assertThat(jobs.exitCode()).as(jobs.toString()).isZero();
        assertThat(jobs.stdout()).contains(jobId);
    }

    private static String[] concat(String[] head, String... tail) {
        String[] out = java.util.Arrays.copyOf(head, head.length + tail.length);
        System.arraycopy(tail, 0, out, head.length, tail.length);
        return out;
    }
}

package dev.expo.e2e;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.google.protobuf.ByteString;
import dev.expo.api.v1.GenerateRequest;
import dev.expo.api.v1.GenerateResponse;
import dev.expo.api.v1.InferenceServiceGrpc;
import dev.expo.api.v1.SamplingParams;
import dev.expo.api.v1.TokenIds;
import dev.expo.benchmarks.SyntheticLlama;
import io.grpc.Channel;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.UnaryOperator;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.zip.CRC32;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Generation as client apps use it, through the gateway of the running stack with gRPC streams: concurrent streams
 * batched together get exactly what they get alone (the goldens), image+text on a tiny multimodal manifest,
 * cancelled and timed-out streams free their slots, a full queue answers RESOURCE_EXHAUSTED, and bad input a clear
 * status while the service keeps serving.
 */
@ExtendWith(StackExtension.class)
class ServingIT {

    private static final ObjectMapper JSON = new ObjectMapper();

    @BeforeAll
    static void models(Stack stack) throws IOException {
        stack.addModel("tiny-llama-sft", "tiny-llama-sft");
        stack.addModel("tiny-mistral", "tiny-mistral");
        stack.addModel("tiny-llama-lora", "tiny-llama-lora");
        stack.addModel("tiny-clip-vision", "tiny-clip-vision");
        stack.addModel("expo-layerwise-golden", "tiny-llama-expo/layerwise");
        java.nio.file.Path vlm = stack.store.resolve("tiny-vlm");
        if (!Files.exists(vlm)) {
            Files.createDirectories(vlm);
            Files.copy(stack.fixture("ddpo-multimodal/projector.safetensors"), vlm.resolve("projector.safetensors"));
            Files.writeString(vlm.resolve("expo-model.json"), """
                    {"language_model": "tiny-llama-sft", "vision_tower": "tiny-clip-vision",
                     "projector": "projector.safetensors"}
                    """);
        }
    }

    /** A greedy request with a golden answer. */
    private record Golden(GenerateRequest request, List<Integer> expected) {
    }

    private static Golden golden(Stack stack, String model, String adapter, String prompt, String file,
                                 String variant) throws IOException {
        JsonNode golden = JSON.readTree(Files.readString(stack.fixture(file))).get(prompt);
        TokenIds.Builder ids = TokenIds.newBuilder();
        golden.get("prompt_ids").forEach(id -> ids.addIds(id.asInt()));
        List<Integer> expected = new ArrayList<>();
        golden.get(variant).get("new_tokens").forEach(id -> expected.add(id.asInt()));
        GenerateRequest.Builder request = GenerateRequest.newBuilder().setModel(model).setTokenIds(ids)
                .setSampling(SamplingParams.newBuilder().setTemperature(0f).setMaxNewTokens(expected.size()));
        if (adapter != null) {
            request.setAdapter(adapter);
        }
        return new Golden(request.build(), expected);
    }

    /** A stream's tokens and how it ended (null status: completed), with its usage's cached prompt tokens. */
    private record Outcome(List<Integer> tokens, String finishReason, Status status, int cachedPromptTokens) {
    }

    /** Starts a stream; {@code onFirst} may cancel it once its first token arrived. */
    private static CompletableFuture<Outcome> start(Stack stack, GenerateRequest request, boolean cancelAfterFirst) {
        return start(stack, request, cancelAfterFirst, TimeUnit.MINUTES.toMillis(2));
    }

    private static CompletableFuture<Outcome> start(Stack stack, GenerateRequest request, boolean cancelAfterFirst,
                                                    long deadlineMillis) {
        return start(stack.gateway(), request, cancelAfterFirst, deadlineMillis);
    }

    private static CompletableFuture<Outcome> start(Channel channel, GenerateRequest request, boolean cancelAfterFirst,
                                                    long deadlineMillis) {
        CompletableFuture<Outcome> outcome = new CompletableFuture<>();
        InferenceServiceGrpc.newStub(channel).withDeadlineAfter(deadlineMillis, TimeUnit.MILLISECONDS)
                .generate(request,
                new ClientResponseObserver<GenerateRequest, GenerateResponse>() {
                    final List<Integer> tokens = new ArrayList<>();
                    String finish = null;
                    int cached;
                    ClientCallStreamObserver<GenerateRequest> call;

                    @Override
                    public void beforeStart(ClientCallStreamObserver<GenerateRequest> requestStream) {
                        call = requestStream;
                    }

                    @Override
                    public void onNext(GenerateResponse response) {
                        tokens.addAll(response.getTokenIdsList());
                        if (response.hasUsage()) {
                            finish = response.getFinishReason().name();
                            cached = response.getUsage().getCachedPromptTokens();
                        }
                        if (cancelAfterFirst && !tokens.isEmpty()) {
                            call.cancel("the client went away", null);
                        }
                    }

                    @Override
                    public void onError(Throwable t) {
                        outcome.complete(new Outcome(tokens, finish, Status.fromThrowable(t), cached));
                    }

                    @Override
                    public void onCompleted() {
                        outcome.complete(new Outcome(tokens, finish, null, cached));
                    }
                });
        return outcome;
    }

    private static Outcome await(CompletableFuture<Outcome> outcome) throws Exception {
        return outcome.get(2, TimeUnit.MINUTES);
    }

    @Test
    void concurrentStreamsGetExactlyTheirGoldensAndShareDecodeSteps(Stack stack) throws Exception {
        List<Golden> kinds = List.of(
                golden(stack, "tiny-llama-sft", null, "p1", "tiny-llama-sft/golden/generate.json", "bf16"),
                golden(stack, "tiny-mistral", null, "p1", "tiny-mistral/golden/generate.json", "bf16"),
                golden(stack, "tiny-llama-sft", "tiny-llama-lora", "p0", "tiny-llama-lora/golden/generate.json",
                        "bf16"),
                golden(stack, "tiny-llama-sft", null, "p0", "tiny-llama-sft/golden/generate.json", "bf16"),
                golden(stack, "expo-layerwise-golden", null, "p0", "tiny-llama-expo/golden/generate.json",
                        "layerwise"));
        // The image+text request has no transformers golden: its answer alone is the reference.
        GenerateRequest image = GenerateRequest.newBuilder().setModel("tiny-vlm")
                .setImage(ByteString.copyFrom(Files.readAllBytes(stack.fixture("images/img0_48x40.png"))))
                .setTokenIds(TokenIds.newBuilder().addAllIds(List.of(1, 242, 339, 311, 60)))
                .setSampling(SamplingParams.newBuilder().setTemperature(0f).setMaxNewTokens(12)).build();
        Outcome alone = await(start(stack, image, false));
        assertThat(alone.status()).isNull();
        assertThat(alone.tokens()).hasSize(12);

        List<GenerateRequest> requests = new ArrayList<>();
        List<List<Integer>> expected = new ArrayList<>();
        for (int i = 0; i < 20; i++) {
            if (i % 5 == 4) {
                requests.add(image);
                expected.add(alone.tokens());
            } else {
                Golden golden = kinds.get(i % kinds.size());
                requests.add(golden.request());
                expected.add(golden.expected());
            }
        }
        // Four long sampled streams go first, so that every golden request on tiny-llama-sft's batch shares its decode
        // steps with them whatever the timing of the others (a 20-token stream can be over before the next starts).
        GenerateRequest companion = GenerateRequest.newBuilder().setModel("tiny-llama-sft")
                .setTokenIds(TokenIds.newBuilder().addAllIds(List.of(1, 17, 23)))
                .setSampling(SamplingParams.newBuilder().setTemperature(1f).setSeed(5).setMaxNewTokens(250)
                        .setIgnoreEos(true)).build();
        List<CompletableFuture<Outcome>> companions = new ArrayList<>();
        for (int i = 0; i < 4; i++) {
            companions.add(start(stack, companion, false));
        }
        List<CompletableFuture<Outcome>> outcomes = requests.stream().map(r -> start(stack, r, false)).toList();
        for (int i = 0; i < outcomes.size(); i++) {
            Outcome outcome = await(outcomes.get(i));
            assertThat(outcome.status()).as("stream " + i).isNull();
            assertThat(outcome.tokens()).as("stream " + i + " (" + requests.get(i).getModel() + ")")
                    .isEqualTo(expected.get(i));
        }
        for (CompletableFuture<Outcome> outcome : companions) {
            assertThat(await(outcome).tokens()).hasSize(250);
        }
        // They ran together: the decode steps of tiny-llama-sft's batch held several sequences at once.
        assertThat(metric(stack, "expo_inference_batch_size_max", "tiny-llama-sft")).isGreaterThan(4);
        // The same prompt once more: its keys and values come from a finished stream's parked cache, all but the
        // last position (computed again for the first token's logits), and the answer is still the golden.
        Golden again = kinds.get(3);
        Outcome cached = await(start(stack, again.request(), false));
        assertThat(cached.tokens()).isEqualTo(again.expected());
        assertThat(cached.cachedPromptTokens()).isEqualTo(again.request().getTokenIds().getIdsCount() - 1);
        assertThat(metric(stack, "expo_inference_prefix_cache_hits_total", "tiny-llama-sft")).isPositive();
        // Latencies come with histogram buckets (for histogram_quantile across instances): each first token in one.
        assertThat(metric(stack, "expo_inference_time_to_first_token_seconds_bucket", "tiny-llama-sft", "le=\"+Inf\""))
                .isEqualTo(metric(stack, "expo_inference_time_to_first_token_seconds_count", "tiny-llama-sft"))
                .isGreaterThan(0);
    }

    @Test
    void cancelledAndTimedOutStreamsStopAndFreeTheirSlots(Stack stack) throws Exception {
        GenerateRequest slow = longStream(stack);
        double cancelledBefore = metric(stack, "expo_inference_requests_total", "stress-llama",
                "finish_reason=\"cancelled\"");
        double completedBefore = metric(stack, "expo_inference_requests_total", "stress-llama",
                "finish_reason=\"length\"");
        List<CompletableFuture<Outcome>> outcomes = new ArrayList<>();
        for (int i = 0; i < 24; i++) {
            outcomes.add(start(stack, slow, true));
        }
        // And eight whose deadline (propagated by the gateway) passes long before 2000 tokens can be streamed.
        List<CompletableFuture<Outcome>> timedOut = new ArrayList<>();
        for (int i = 0; i < 8; i++) {
            timedOut.add(start(stack, slow, false, 40));
        }
        int cancelled = 0;
        for (CompletableFuture<Outcome> outcome : outcomes) {
            Outcome o = await(outcome);
            if (o.status() != null) {
                assertThat(o.status().getCode()).as("%s", o.status()).isEqualTo(Status.Code.CANCELLED);
                assertThat(o.tokens().size()).isLessThan(2000);
                cancelled++;
            }
        }
        assertThat(cancelled).isEqualTo(24);
        for (CompletableFuture<Outcome> outcome : timedOut) {
            Outcome o = await(outcome);
            assertThat(o.status()).isNotNull();
            assertThat(o.status().getCode()).isEqualTo(Status.Code.DEADLINE_EXCEEDED);
            assertThat(o.tokens().size()).isLessThan(2000);
        }
        // The server saw them go, and nothing is left running or waiting.
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (System.nanoTime() < deadline && (metric(stack, "expo_inference_batch_running", "stress-llama") > 0
                || metric(stack, "expo_inference_queue_depth", "stress-llama") > 0
                || metric(stack, "expo_inference_requests_total", "stress-llama", "finish_reason=\"cancelled\"")
                        < cancelledBefore + 24)) {
            Thread.sleep(100);
        }
        assertThat(metric(stack, "expo_inference_batch_running", "stress-llama")).isZero();
        assertThat(metric(stack, "expo_inference_queue_depth", "stress-llama")).isZero();
        // Their KV cache reservations were given back too.
        assertThat(serverMetric(stack, "expo_inference_kv_cache_budget_bytes")).isPositive();
        assertThat(serverMetric(stack, "expo_inference_kv_cache_reserved_bytes")).isZero();
        assertThat(metric(stack, "expo_inference_requests_total", "stress-llama", "finish_reason=\"cancelled\""))
                .as("cancelled on the server (%s before; all finishes now %s, length %s)", cancelledBefore,
                        metric(stack, "expo_inference_requests_total", "stress-llama"), metric(stack,
                                "expo_inference_requests_total", "stress-llama", "finish_reason=\"length\""))
                .isGreaterThanOrEqualTo(cancelledBefore + 24);
        // None of the 32 ran on to its 2000 tokens on the server after its client had gone.
        assertThat(metric(stack, "expo_inference_requests_total", "stress-llama", "finish_reason=\"length\""))
                .isEqualTo(completedBefore);
        Outcome after = await(start(stack, slow.toBuilder().setSampling(slow.getSampling().toBuilder()
                .setMaxNewTokens(5)).build(), false));
        assertThat(after.status()).isNull();
        assertThat(after.tokens()).hasSize(5);
    }

    @Test
    void clientsResettingAsTheirFirstTokenIsWrittenLeaveTheOtherStreamsOnTheConnectionAlone(Stack stack)
            throws Exception {
        // A client whose deadline passes as its first token (a HEADERS frame) is being written resets the stream under
        // that write. Netty then took the write for a protocol error and sent GOAWAY: every stream on the connection
        // died with INTERNAL. Before the services wrote on the call's event loop, one round in five of these met it.
        GenerateRequest request = longStream(stack);
        double cancelledBefore = metric(stack, "expo_inference_requests_total", "stress-llama",
                "finish_reason=\"cancelled\"");
        double completedBefore = metric(stack, "expo_inference_requests_total", "stress-llama",
                "finish_reason=\"length\"");
        ManagedChannel direct = ManagedChannelBuilder.forAddress("127.0.0.1", stack.port("inference-service"))
                .usePlaintext().build();
        java.util.Random random = new java.util.Random(5);
        int streams = 0;
        try {
            for (int round = 0; round < 60; round++) {
                Channel channel = round % 2 == 0 ? stack.gateway() : direct;
                List<CompletableFuture<Outcome>> outcomes = new ArrayList<>();
                for (int i = 0; i < 8; i++) {
                    outcomes.add(start(channel, request, true, TimeUnit.MINUTES.toMillis(2)));
                }
                for (int i = 0; i < 24; i++) {
                    outcomes.add(start(channel, request, false, 1 + random.nextInt(30)));
                }
                for (CompletableFuture<Outcome> outcome : outcomes) {
                    Outcome o = await(outcome);
                    // Ended by the client (CANCELLED, DEADLINE_EXCEEDED) or, when the server's deadline timer went
                    // first, completed with finish reason "cancelled"; never by the connection.
                    if (o.status() != null) {
                        assertThat(o.status().getCode()).as("round %d: %s", round, o.status())
                                .isIn(Status.Code.CANCELLED, Status.Code.DEADLINE_EXCEEDED);
                    } else {
                        assertThat(o.finishReason()).as("round %d", round).isEqualTo("FINISH_REASON_CANCELLED");
                    }
                    streams++;
                }
            }
        } finally {
            direct.shutdownNow();
        }
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (System.nanoTime() < deadline && (metric(stack, "expo_inference_batch_running", "stress-llama") > 0
                || metric(stack, "expo_inference_queue_depth", "stress-llama") > 0)) {
            Thread.sleep(100);
        }
        assertThat(metric(stack, "expo_inference_batch_running", "stress-llama")).isZero();
        assertThat(metric(stack, "expo_inference_queue_depth", "stress-llama")).isZero();
        assertThat(metric(stack, "expo_inference_requests_total", "stress-llama", "finish_reason=\"length\""))
                .as("none ran on to its 2000 tokens").isEqualTo(completedBefore);
        assertThat(metric(stack, "expo_inference_requests_total", "stress-llama", "finish_reason=\"cancelled\""))
                .as("the server saw the streams that reached it go")
                .isGreaterThan(cancelledBefore + streams / 4.0);
    }

    /**
     * A sampled 2000-token stream on stress-llama: more than the model can generate before a cancellation or a 40 ms
     * deadline reaches it (the tiny fixtures, at most 256 positions, can finish theirs within 40 ms on a fast machine).
     */
    private static GenerateRequest longStream(Stack stack) throws IOException {
        stressModel(stack);
        return GenerateRequest.newBuilder().setModel("stress-llama")
                .setTokenIds(TokenIds.newBuilder().addAllIds(List.of(1, 5, 9)))
                .setSampling(SamplingParams.newBuilder().setTemperature(1f).setSeed(3).setMaxNewTokens(2000)
                        .setIgnoreEos(true)).build();
    }

    /** A small model with 2048 positions, fast enough for many short-lived streams a second. */
    private static void stressModel(Stack stack) throws IOException {
        syntheticModel(stack, "stress-llama", new SyntheticLlama.Shape(384, 64, 128, 2, 4));
    }

    @Test
    void aClientWhoseConnectionDropsStopsItsGeneration(Stack stack) throws Exception {
        slowModel(stack);
        for (String target : List.of("gateway", "inference-service")) {
            double cancelledBefore = metric(stack, "expo_inference_requests_total", "slow-llama",
                    "finish_reason=\"cancelled\"");
            Process client = abandonedStream(stack, target);
            client.destroyForcibly().waitFor();   // SIGKILL: the kernel closes its connection, nothing is sent
            awaitCancelled(stack, target, cancelledBefore);
        }
    }

    @Test
    void aClientsDeadlineStopsItsGenerationEvenWhenTheClientCannotResetItsStream(Stack stack) throws Exception {
        // The client is frozen (SIGSTOP) at its first token, so its own deadline timer never resets the stream and its
        // connection stays open: the services must enforce the deadline it sent (grpc-timeout) themselves.
        slowModel(stack);
        InferenceServiceGrpc.newBlockingStub(stack.gateway()).loadModel(
                dev.expo.api.v1.LoadModelRequest.newBuilder().setModel("slow-llama").build());
        for (String target : List.of("gateway", "inference-service")) {
            double cancelledBefore = metric(stack, "expo_inference_requests_total", "slow-llama",
                    "finish_reason=\"cancelled\"");
            // A 3 s deadline on a generation of 1500 tokens (over 15 s).
            Process client = abandonedStream(stack, target, "3000", "1500");
            try {
                assertThat(new ProcessBuilder("kill", "-STOP", Long.toString(client.pid())).start().waitFor())
                        .isZero();
                awaitCancelled(stack, target, cancelledBefore);
            } finally {
                client.destroyForcibly().waitFor();
            }
        }
    }

    /** A synthetic model slow enough (57M parameters, ~3 s for 250 tokens on two cores) to outlive its clients. */
    private static void slowModel(Stack stack) throws IOException {
        syntheticModel(stack, "slow-llama", new SyntheticLlama.Shape(384, 768, 2048, 8, 12));
    }

    /** A synthetic LLaMA of this shape in the store (once), with the tiny fixtures' tokenizer. */
    private static void syntheticModel(Stack stack, String name, SyntheticLlama.Shape shape) throws IOException {
        java.nio.file.Path model = stack.store.resolve(name);
        if (!Files.exists(model)) {
            SyntheticLlama.writeModel(shape, Long.MAX_VALUE, model);
            for (String file : List.of("tokenizer.json", "tokenizer_config.json")) {
                Files.copy(stack.fixture("tiny-llama-sft/" + file), model.resolve(file));
            }
        }
    }

    /** An {@link AbandonedStream} client process on slow-llama through {@code target}, once it has its first token. */
    private static Process abandonedStream(Stack stack, String target, String... options) throws Exception {
        List<String> command = new ArrayList<>(List.of(Stack.javaBin(), "-cp", System.getProperty("java.class.path"),
                AbandonedStream.class.getName(), "127.0.0.1:" + stack.port(target), "slow-llama"));
        command.addAll(List.of(options));
        ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true);
        builder.environment().put("EXPO_API_KEY", stack.adminKey());
        Process client = builder.start();
        java.io.BufferedReader out = new java.io.BufferedReader(new java.io.InputStreamReader(
                client.getInputStream(), java.nio.charset.StandardCharsets.UTF_8));
        CompletableFuture<String> first = CompletableFuture.supplyAsync(() -> {
            try {
                for (String line = out.readLine(); line != null; line = out.readLine()) {
                    if (line.equals("first token")) {
                        return line;
                    }
                }
                return "the client exited";
            } catch (IOException e) {
                return e.toString();
            }
        });
        try {
            assertThat(first.get(2, TimeUnit.MINUTES)).as("through the " + target).isEqualTo("first token");
        } catch (Exception | AssertionError e) {
            client.destroyForcibly().waitFor();
            throw e;
        }
        return client;
    }

    /** Waits for the server to finish one more slow-llama stream as cancelled; none may have run to its length. */
    private static void awaitCancelled(Stack stack, String target, double cancelledBefore) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (System.nanoTime() < deadline && metric(stack, "expo_inference_requests_total", "slow-llama",
                "finish_reason=\"cancelled\"") < cancelledBefore + 1) {
            Thread.sleep(50);
        }
        assertThat(metric(stack, "expo_inference_requests_total", "slow-llama", "finish_reason=\"cancelled\""))
                .as("through the " + target + ": stopped as cancelled").isEqualTo(cancelledBefore + 1);
        assertThat(metric(stack, "expo_inference_requests_total", "slow-llama", "finish_reason=\"length\""))
                .as("through the " + target + ": none ran on to its length").isZero();
    }

    @Test
    void aFullQueueAnswersResourceExhaustedAndTheRestAreServed(Stack stack) throws Exception {
        // At most 64 wait (plus those already running, up to 16); the rest of a burst of 120 long streams cannot.
        GenerateRequest longOne = GenerateRequest.newBuilder().setModel("tiny-llama-sft")
                .setTokenIds(TokenIds.newBuilder().addAllIds(List.of(1, 7, 11)))
                .setSampling(SamplingParams.newBuilder().setTemperature(0f).setMaxNewTokens(120).setIgnoreEos(true))
                .build();
        List<CompletableFuture<Outcome>> outcomes = new ArrayList<>();
        for (int i = 0; i < 120; i++) {
            outcomes.add(start(stack, longOne, false));
        }
        int exhausted = 0;
        int served = 0;
        for (CompletableFuture<Outcome> outcome : outcomes) {
            Outcome o = await(outcome);
            if (o.status() == null) {
                assertThat(o.tokens()).hasSize(120);
                assertThat(o.finishReason()).isEqualTo("FINISH_REASON_LENGTH");
                served++;
            } else {
                assertThat(o.status().getCode()).as(o.status().toString()).isEqualTo(Status.Code.RESOURCE_EXHAUSTED);
                assertThat(o.status().getDescription()).contains("waiting", "retry later");
                exhausted++;
            }
        }
        assertThat(exhausted).isPositive();
        assertThat(served).isGreaterThan(64);
    }

    @Test
    void badInputGetsAClearStatusAndTheServiceKeepsServing(Stack stack) throws Exception {
        GenerateRequest good = GenerateRequest.newBuilder().setModel("tiny-llama-sft")
                .setTokenIds(TokenIds.newBuilder().addAllIds(List.of(1, 20, 30)))
                .setSampling(SamplingParams.newBuilder().setTemperature(0f).setMaxNewTokens(200).setIgnoreEos(true))
                .build();
        // A stream that runs while the bad requests come and go.
        CompletableFuture<Outcome> bystander = start(stack, good, false);
        byte[] png = Files.readAllBytes(stack.fixture("images/img0_48x40.png"));
        TokenIds tooLong = TokenIds.newBuilder().addAllIds(java.util.Collections.nCopies(300, 5)).build();
        record Case(String what, UnaryOperator<GenerateRequest.Builder> change, Status.Code code, String says) {
        }
        List<Case> cases = List.of(
                new Case("unknown model", b -> b.setModel("no-such-model"), Status.Code.NOT_FOUND,
                        "model \"no-such-model\" is not in the model store"),
                new Case("unknown adapter", b -> b.setAdapter("no-such-adapter"), Status.Code.NOT_FOUND,
                        "adapter \"no-such-adapter\" is not in the model store"),
                new Case("prompt past the context", b -> b.setTokenIds(tooLong), Status.Code.INVALID_ARGUMENT,
                        "context"),
                new Case("prompt + max_new_tokens past the context", b -> b.setSampling(
                        b.getSampling().toBuilder().setMaxNewTokens(255)), Status.Code.INVALID_ARGUMENT,
                        "max_new_tokens"),
                new Case("token id outside the vocabulary", b -> b.setTokenIds(TokenIds.newBuilder().addIds(1)
                        .addIds(100_000)), Status.Code.INVALID_ARGUMENT, "100000"),
                new Case("stop token outside the vocabulary", b -> b.setSampling(b.getSampling().toBuilder()
                        .addStopTokenIds(-1)), Status.Code.INVALID_ARGUMENT, "stop_token_ids"),
                new Case("empty prompt", b -> b.setTokenIds(TokenIds.getDefaultInstance()),
                        Status.Code.INVALID_ARGUMENT, "token_ids"),
                new Case("negative temperature", b -> b.setSampling(b.getSampling().toBuilder().setTemperature(-1)),
                        Status.Code.INVALID_ARGUMENT, "temperature"),
                new Case("top_p above 1", b -> b.setSampling(b.getSampling().toBuilder().setTopP(1.5f)),
                        Status.Code.INVALID_ARGUMENT, "top_p"),
                new Case("min_p below 0", b -> b.setSampling(b.getSampling().toBuilder().setMinP(-0.1f)),
                        Status.Code.INVALID_ARGUMENT, "min_p"),
                new Case("max_new_tokens 0", b -> b.setSampling(b.getSampling().toBuilder().setMaxNewTokens(0)),
                        Status.Code.INVALID_ARGUMENT, "max_new_tokens"),
                new Case("image on a text model", b -> b.setImage(ByteString.copyFrom(png)),
                        Status.Code.INVALID_ARGUMENT, "image"),
                new Case("corrupt image", b -> b.setModel("tiny-vlm").setImage(ByteString.copyFromUtf8(
                        "\u0089PNG not really")), Status.Code.INVALID_ARGUMENT, "image"),
                new Case("JPEG cut short", b -> b.setModel("tiny-vlm").setImage(ByteString.copyFrom(jpegCutShort())),
                        Status.Code.INVALID_ARGUMENT, "truncated"),
                new Case("image over the byte limit", b -> b.setModel("tiny-vlm").setImage(ByteString.copyFrom(
                        new byte[21 << 20])), Status.Code.INVALID_ARGUMENT, "bytes"),
                new Case("image of too many pixels", b -> b.setModel("tiny-vlm").setImage(ByteString.copyFrom(
                        pngHeaderOnly(20_000, 20_000))), Status.Code.INVALID_ARGUMENT, "pixels"));
        for (Case c : cases) {
            GenerateRequest request = c.change().apply(good.toBuilder().setSampling(good.getSampling().toBuilder()
                    .setMaxNewTokens(4))).build();
            assertThatThrownBy(() -> drain(stack, request)).as(c.what())
                    .isInstanceOfSatisfying(StatusRuntimeException.class, e -> {
                        assertThat(e.getStatus().getCode()).as(c.what() + ": " + e.getStatus())
                                .isEqualTo(c.code());
                        assertThat(e.getStatus().getDescription()).as(c.what()).containsIgnoringCase(c.says());
                    });
        }
        Outcome outcome = await(bystander);
        assertThat(outcome.status()).isNull();
        assertThat(outcome.tokens()).hasSize(200);
        assertThat(drain(stack, good.toBuilder().setSampling(good.getSampling().toBuilder().setMaxNewTokens(3))
                .build())).hasSize(3);
    }

    /** Reads a whole stream; its tokens. */
    private static List<Integer> drain(Stack stack, GenerateRequest request) {
        List<Integer> tokens = new ArrayList<>();
        Iterator<GenerateResponse> responses = InferenceServiceGrpc.newBlockingStub(stack.gateway())
                .withDeadlineAfter(1, TimeUnit.MINUTES).generate(request);
        responses.forEachRemaining(r -> tokens.addAll(r.getTokenIdsList()));
        return tokens;
    }

    /** A PNG whose header declares {@code width x height} pixels (and whose data is missing). */
    static byte[] pngHeaderOnly(int width, int height) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes(new byte[] {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'});
        ByteBuffer ihdr = ByteBuffer.allocate(17).put("IHDR".getBytes()).putInt(width).putInt(height)
                .put((byte) 8).put((byte) 2).put((byte) 0).put((byte) 0).put((byte) 0);
        CRC32 crc = new CRC32();
        crc.update(ihdr.array());
        out.writeBytes(ByteBuffer.allocate(4).putInt(13).array());
        out.writeBytes(ihdr.array());
        out.writeBytes(ByteBuffer.allocate(4).putInt((int) crc.getValue()).array());
        return out.toByteArray();
    }

    /** A JPEG of noise whose bytes stop halfway through its scan. */
    static byte[] jpegCutShort() {
        BufferedImage image = new BufferedImage(64, 48, BufferedImage.TYPE_INT_RGB);
        SplittableRandom random = new SplittableRandom(11);
        for (int y = 0; y < image.getHeight(); y++) {
            for (int x = 0; x < image.getWidth(); x++) {
                image.setRGB(x, y, random.nextInt());
            }
        }
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try {
            ImageIO.write(image, "jpeg", out);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
        byte[] whole = out.toByteArray();
        return Arrays.copyOf(whole, whole.length / 2);
    }

    /** A metric of the whole service (no model tag). */
    private static double serverMetric(Stack stack, String name) throws Exception {
        Matcher matcher = Pattern.compile("^" + Pattern.quote(name) + "(?:\\{[^}]*})? (\\S+)$", Pattern.MULTILINE)
                .matcher(stack.metrics("inference-service"));
        assertThat(matcher.find()).as(name + " in /q/metrics").isTrue();
        return Double.parseDouble(matcher.group(1));
    }

    /** A sample of the inference service's Prometheus metrics, for a model (0 when absent). */
    private static double metric(Stack stack, String name, String model, String... labels) throws Exception {
        Pattern line = Pattern.compile("^" + Pattern.quote(name) + "\\{([^}]*)} (\\S+)$", Pattern.MULTILINE);
        Matcher matcher = line.matcher(stack.metrics("inference-service"));
        double total = 0;
        while (matcher.find()) {
            String tags = matcher.group(1);
            boolean matches = tags.contains("model=\"" + model + "\"");
            for (String label : labels) {
                matches &= tags.contains(label);
            }
            if (matches) {
                total += Double.parseDouble(matcher.group(2));
            }
        }
        return total;
    }
}

package dev.expo.e2e;

import dev.expo.api.v1.FinishReason;
import dev.expo.api.v1.GenerateRequest;
import dev.expo.api.v1.GenerateResponse;
import dev.expo.api.v1.InferenceServiceGrpc;
import dev.expo.api.v1.ListModelsRequest;
import dev.expo.api.v1.ModelInfo;
import dev.expo.api.v1.SamplingParams;
import dev.expo.api.v1.ScoreRequest;
import dev.expo.api.v1.TokenIds;
import dev.expo.benchmarks.SyntheticLlama;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.Timeout;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

/**
 * Two inference replicas behind one gateway. One of them hangs (SIGSTOP): deadlines still end the calls sent to it on
 * time, and the gateway stops routing to it. One is terminated (SIGTERM, as Kubernetes stops a pod): it finishes its
 * streams and every call meanwhile is served. One of them is killed (SIGKILL) mid-stream: its clients get UNAVAILABLE
 * at once, never a hang; the streams on the other replica run to their end undisturbed; the next calls are served by
 * the replica that is left. The gateway killed under load: its streams end, the replicas cancel them, and it serves
 * again when started. A stack of its own (the shared one is not for killing).
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class ReplicaFaultIT {

    private static final String MODEL = "fault-llama";
    private static Stack stack;

    @BeforeAll
    static void start() throws Exception {
        stack = Stack.of("e2e-fault-logs", "inference-service", "inference-service-2", "gateway");
        Path model = stack.store.resolve(MODEL);
        // Big enough that a stream of a few hundred tokens takes seconds on two cores.
        SyntheticLlama.writeModel(new SyntheticLlama.Shape(384, 512, 1024, 8, 8), Long.MAX_VALUE, model);
        for (String file : List.of("tokenizer.json", "tokenizer_config.json")) {
            Files.copy(stack.fixture("tiny-llama-sft/" + file), model.resolve(file));
        }
    }

    @AfterAll
    static void stop() {
        if (stack != null) {
            stack.close();
        }
    }

    /** One stream's end: its status (OK when it finished), tokens, finish reason, and when it ended. */
    record Outcome(Status status, int tokens, FinishReason finish, long endedNanos) {
    }

    private static CompletableFuture<Outcome> stream(int maxNewTokens, CountDownLatch firstToken) {
        return stream(maxNewTokens, firstToken, 120_000);
    }

    private static CompletableFuture<Outcome> stream(int maxNewTokens, CountDownLatch firstToken, long deadlineMs) {
        return stream(MODEL, maxNewTokens, firstToken, deadlineMs);
    }

    private static CompletableFuture<Outcome> stream(String model, int maxNewTokens) {
        return stream(model, maxNewTokens, new CountDownLatch(1), 60_000);
    }

    private static CompletableFuture<Outcome> stream(String model, int maxNewTokens, CountDownLatch firstToken,
                                                     long deadlineMs) {
        CompletableFuture<Outcome> outcome = new CompletableFuture<>();
        GenerateRequest request = GenerateRequest.newBuilder().setModel(model)
                .setTokenIds(TokenIds.newBuilder().addAllIds(List.of(1, 5, 9)))
                .setSampling(SamplingParams.newBuilder().setTemperature(0f).setMaxNewTokens(maxNewTokens)
                        .setIgnoreEos(true)).build();
        AtomicInteger tokens = new AtomicInteger();
        FinishReason[] finish = {FinishReason.FINISH_REASON_UNSPECIFIED};
        InferenceServiceGrpc.newStub(stack.gateway()).withDeadlineAfter(deadlineMs, TimeUnit.MILLISECONDS)
                .generate(request,
                new StreamObserver<>() {
                    @Override
                    public void onNext(GenerateResponse response) {
                        if (tokens.getAndAdd(response.getTokenIdsCount()) == 0 && response.getTokenIdsCount() > 0) {
                            firstToken.countDown();
                        }
                        finish[0] = response.getFinishReason();
                    }

                    @Override
                    public void onError(Throwable t) {
                        outcome.complete(new Outcome(Status.fromThrowable(t), tokens.get(), finish[0],
                                System.nanoTime()));
                    }

                    @Override
                    public void onCompleted() {
                        outcome.complete(new Outcome(Status.OK, tokens.get(), finish[0], System.nanoTime()));
                    }
                });
        return outcome;
    }

    /** A replica's meter for the test model, summed over the lines that also hold {@code label}. */
    private static double metric(String replica, String name, String label) throws Exception {
        return stack.metrics(replica).lines().filter(l -> l.startsWith(name + "{") && l.contains(MODEL)
                && l.contains(label)).mapToDouble(l -> Double.parseDouble(l.substring(l.lastIndexOf(' ') + 1)))
                .sum();
    }

    private static double running(String replica) throws Exception {
        return metric(replica, "expo_inference_batch_running", "");
    }

    /** {@code count} streams of {@code newTokens} each, returned once every one has its first token. */
    private static List<CompletableFuture<Outcome>> streamsUnderWay(int count, int newTokens) throws Exception {
        CountDownLatch started = new CountDownLatch(count);
        List<CompletableFuture<Outcome>> streams = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            streams.add(stream(newTokens, started));
        }
        assertThat(started.await(60, TimeUnit.SECONDS)).as("every stream has its first token").isTrue();
        return streams;
    }

    private static void signal(String signal, String service) throws Exception {
        Process kill = new ProcessBuilder("kill", "-" + signal, String.valueOf(stack.pid(service))).start();
        assertThat(kill.waitFor()).as("kill -" + signal).isZero();
    }

    private static double served(String replica) throws Exception {
        return metric(replica, "expo_inference_requests_total", "");
    }

    /**
     * Both replicas connected and warm (each loads the model on its first call), so the streams of a test start
     * together: calls until each replica has served one.
     */
    private static void warmBoth() throws Exception {
        double first = served("inference-service");
        double second = served("inference-service-2");
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
        while (served("inference-service") <= first || served("inference-service-2") <= second) {
            assertThat(System.nanoTime()).as("both replicas serve").isLessThan(deadline);
            CountDownLatch warm = new CountDownLatch(2);
            for (CompletableFuture<Outcome> done : List.of(stream(2, warm), stream(2, warm))) {
                assertThat(done.get(120, TimeUnit.SECONDS).status().getCode()).isEqualTo(Status.Code.OK);
            }
        }
    }

    @Test
    @Order(1)
    @Timeout(180)
    void aHungReplicaIsDroppedAndDeadlinesEndTheCallsSentToIt() throws Exception {
        warmBoth();
        signal("STOP", "inference-service-2");
        try {
            long stopped = System.nanoTime();
            // Calls with a 2 s deadline: those that reach the hung replica end on time, the others succeed.
            List<Outcome> early = new ArrayList<>();
            for (int i = 0; i < 4; i++) {
                early.add(stream(4, new CountDownLatch(1), 2000).get(10, TimeUnit.SECONDS));
            }
            for (Outcome outcome : early) {
                assertThat(outcome.status().getCode()).as(outcome.toString()).isIn(Status.Code.OK,
                        Status.Code.DEADLINE_EXCEEDED);
            }
            assertThat(early).as("some calls went to the hung replica and hit their deadline").anySatisfy(o ->
                    assertThat(o.status().getCode()).isEqualTo(Status.Code.DEADLINE_EXCEEDED));
            // The gateway's keepalive finds the replica unresponsive and the balancer leaves it out: every call then
            // succeeds.
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            int inARow = 0;
            while (inARow < 6) {
                assertThat(System.nanoTime()).as("the hung replica is still picked 60 s on").isLessThan(deadline);
                Outcome outcome = stream(4, new CountDownLatch(1), 2000).get(10, TimeUnit.SECONDS);
                inARow = outcome.status().isOk() ? inARow + 1 : 0;
            }
            System.out.printf("ReplicaFaultIT: a SIGSTOPped replica left out of the balancing after %d ms%n",
                    TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - stopped));
        } finally {
            signal("CONT", "inference-service-2");
        }
    }

    @Test
    @Order(2)
    @Timeout(180)
    void aTerminatedReplicaFinishesItsStreamsAndCallsMeanwhileAreServed() throws Exception {
        warmBoth();
        int newTokens = 300;
        List<CompletableFuture<Outcome>> streams = streamsUnderWay(2, newTokens);
        assertThat(running("inference-service-2")).as("one stream on the replica to stop").isEqualTo(1);

        signal("TERM", "inference-service-2");                         // what Kubernetes sends a terminating pod
        Thread.sleep(300);                                              // its shutdown hook has run
        // It takes no new calls: one sent to it directly is refused at once ...
        Status refused = Status.fromThrowable(catchThrowable(() -> direct("inference-service-2", replica -> replica
                .score(ScoreRequest.newBuilder().setModel(MODEL)
                        .setTokenIds(TokenIds.newBuilder().addAllIds(List.of(1, 5, 9))).build()))));
        assertThat(refused.getCode()).as(refused.toString()).isEqualTo(Status.Code.UNAVAILABLE);
        assertThat(refused.getDescription()).contains("shutting down");
        // ... and through the gateway every new call is served (retried on the other replica when refused).
        for (int i = 0; i < 6; i++) {
            Outcome outcome = stream(4, new CountDownLatch(1), 10_000).get(20, TimeUnit.SECONDS);
            assertThat(outcome.status().getCode()).as("call " + i + " during the drain: " + outcome)
                    .isEqualTo(Status.Code.OK);
        }
        for (CompletableFuture<Outcome> stream : streams) {
            Outcome outcome = stream.get(60, TimeUnit.SECONDS);
            assertThat(outcome.status().getCode()).as(outcome.toString()).isEqualTo(Status.Code.OK);
            assertThat(outcome.tokens()).isEqualTo(newTokens);
        }
        assertThat(stack.awaitExit("inference-service-2", 30)).as("the replica exits within its grace").isTrue();
        stack.startAgain("inference-service-2");
    }

    @Test
    @Order(3)
    @Timeout(180)
    void killingOneReplicaMidStreamFailsOnlyItsStreamsAndAtOnce() throws Exception {
        warmBoth();

        int newTokens = 400;
        List<CompletableFuture<Outcome>> streams = streamsUnderWay(4, newTokens);
        // The balancer spread them over both replicas.
        int onFirst = (int) running("inference-service");
        int onSecond = (int) running("inference-service-2");
        assertThat(onFirst).isPositive();
        assertThat(onSecond).isPositive();
        assertThat(onFirst + onSecond).isEqualTo(4);

        long killed = System.nanoTime();
        stack.kill("inference-service-2");

        List<Outcome> outcomes = new ArrayList<>();
        for (CompletableFuture<Outcome> stream : streams) {
            outcomes.add(stream.get(120, TimeUnit.SECONDS));
        }
        List<Outcome> failed = outcomes.stream().filter(o -> !o.status().isOk()).toList();
        System.out.printf("ReplicaFaultIT: kill -9 to UNAVAILABLE on the killed replica's streams: %s ms%n",
                failed.stream().map(o -> String.valueOf(TimeUnit.NANOSECONDS.toMillis(o.endedNanos() - killed)))
                        .toList());
        List<Outcome> finished = outcomes.stream().filter(o -> o.status().isOk()).toList();
        assertThat(failed).as(outcomes.toString()).hasSize(onSecond).allSatisfy(o -> {
            assertThat(o.status().getCode()).isEqualTo(Status.Code.UNAVAILABLE);
            assertThat(o.status().getDescription()).contains("inference-service");
            assertThat(TimeUnit.NANOSECONDS.toMillis(o.endedNanos() - killed)).as("ms from the kill to the error")
                    .isLessThan(1000);
            assertThat(o.tokens()).isLessThan(newTokens);
        });
        assertThat(finished).as(outcomes.toString()).hasSize(onFirst).allSatisfy(o -> {
            assertThat(o.tokens()).isEqualTo(newTokens);
            assertThat(o.finish()).isEqualTo(FinishReason.FINISH_REASON_LENGTH);
        });

        // The calls after it all go to the replica that is left.
        CountDownLatch after = new CountDownLatch(6);
        List<CompletableFuture<Outcome>> next = new ArrayList<>();
        for (int i = 0; i < 6; i++) {
            next.add(stream(4, after));
        }
        for (CompletableFuture<Outcome> call : next) {
            Outcome outcome = call.get(60, TimeUnit.SECONDS);
            assertThat(outcome.status().getCode()).as(outcome.toString()).isEqualTo(Status.Code.OK);
            assertThat(outcome.tokens()).isEqualTo(4);
        }
    }

    private static double cancelled(String replica) throws Exception {
        return metric(replica, "expo_inference_requests_total", "finish_reason=\"cancelled\"");
    }

    /**
     * The gateway killed under load and started again: its clients' streams end in UNAVAILABLE, the backends cancel
     * every stream it was forwarding (nothing keeps decoding for a client that is gone), and calls succeed again once
     * it is back (the same keys: they are in the store).
     */
    @Test
    @Order(4)
    @Timeout(180)
    void aGatewayRestartedUnderLoadLeavesNothingRunningAndServesAgain() throws Exception {
        stack.startAgain("inference-service-2");                          // killed by the test before
        warmBoth();
        double cancelledBefore = cancelled("inference-service") + cancelled("inference-service-2");
        List<CompletableFuture<Outcome>> streams = streamsUnderWay(6, 600);

        stack.kill("gateway");
        for (CompletableFuture<Outcome> stream : streams) {
            Outcome outcome = stream.get(30, TimeUnit.SECONDS);
            assertThat(outcome.status().getCode()).as(outcome.toString()).isEqualTo(Status.Code.UNAVAILABLE);
        }
        // Every stream the gateway was forwarding is cancelled at its replica, and no slot stays taken.
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while ((running("inference-service") + running("inference-service-2") > 0
                || cancelled("inference-service") + cancelled("inference-service-2") < cancelledBefore + 6)
                && System.nanoTime() < deadline) {
            Thread.sleep(100);
        }
        assertThat(running("inference-service") + running("inference-service-2")).isZero();
        assertThat(cancelled("inference-service") + cancelled("inference-service-2") - cancelledBefore).isEqualTo(6);

        // Calls meanwhile are UNAVAILABLE, and succeed on retry once the gateway is back.
        Outcome whileDown = stream(4, new CountDownLatch(1), 5000).get(30, TimeUnit.SECONDS);
        assertThat(whileDown.status().getCode()).isEqualTo(Status.Code.UNAVAILABLE);
        stack.startAgain("gateway");
        Outcome after = stream(4, new CountDownLatch(1), 30_000).get(60, TimeUnit.SECONDS);
        assertThat(after.status().getCode()).as(after.toString()).isEqualTo(Status.Code.OK);
        assertThat(after.tokens()).isEqualTo(4);
    }
    /** The models a replica has loaded, asked of it directly. */
    private static List<String> loadedOn(String replica) {
        return direct(replica, stub -> stub.listModels(ListModelsRequest.newBuilder().setPageSize(1000).build())
                .getModelsList().stream().filter(ModelInfo::getLoaded).map(ModelInfo::getName).toList());
    }

    /** One call straight to a replica, not through the gateway (10 s deadline). */
    private static <T> T direct(String replica,
                                java.util.function.Function<InferenceServiceGrpc.InferenceServiceBlockingStub, T> call) {
        ManagedChannel channel = ManagedChannelBuilder.forAddress("127.0.0.1", stack.port(replica)).usePlaintext()
                .build();
        try {
            return call.apply(InferenceServiceGrpc.newBlockingStub(channel).withDeadlineAfter(10, TimeUnit.SECONDS));
        } finally {
            channel.shutdownNow();
        }
    }

    /**
     * The balancer sends a model's calls to the replica that has it: two models, each called twice in a row, are each
     * loaded on one replica (round robin would load both on both: twice the memory, and a load on each replica's
     * first call).
     */
    @Test
    @Order(5)
    @Timeout(180)
    void callsForAModelGoToTheReplicaThatHasIt() throws Exception {
        List<String> models = List.of("affinity-a", "affinity-b");
        for (String name : models) {
            Path copy = stack.store.resolve(name);
            Files.createDirectories(copy);
            try (var files = Files.list(stack.store.resolve(MODEL))) {
                for (Path file : files.toList()) {
                    Files.copy(file, copy.resolve(file.getFileName()));
                }
            }
        }
        // each model twice in a row: calls in turn over two replicas would put each on both
        for (int round = 0; round < 2; round++) {
            for (String name : models) {
                for (int call = 0; call < 2; call++) {
                    Outcome outcome = stream(name, 2).get(60, TimeUnit.SECONDS);
                    assertThat(outcome.status().getCode()).as(name + ": " + outcome).isEqualTo(Status.Code.OK);
                }
            }
        }
        List<String> first = loadedOn("inference-service");
        List<String> second = loadedOn("inference-service-2");
        System.out.printf("ReplicaFaultIT: after 8 calls for 2 models, loaded on the replicas: %s and %s%n",
                first, second);
        for (String name : models) {
            assertThat((first.contains(name) ? 1 : 0) + (second.contains(name) ? 1 : 0)).as(name + " loaded on "
                    + "exactly one replica: " + first + " / " + second).isEqualTo(1);
        }
    }
}

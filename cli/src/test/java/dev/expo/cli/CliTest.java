package dev.expo.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The command line without a stack: usage errors, unreachable gateway, local commands. */
class CliTest {

    private record Run(int code, String out, String err) {
    }

    private static synchronized Run run(String... args) {
        PrintStream out = System.out;
        PrintStream err = System.err;
        ByteArrayOutputStream stdout = new ByteArrayOutputStream();
        ByteArrayOutputStream stderr = new ByteArrayOutputStream();
        try {
            System.setOut(new PrintStream(stdout, true, StandardCharsets.UTF_8));
            System.setErr(new PrintStream(stderr, true, StandardCharsets.UTF_8));
            int code = Main.run(args);
            return new Run(code, stdout.toString(StandardCharsets.UTF_8), stderr.toString(StandardCharsets.UTF_8));
        } finally {
            System.setOut(out);
            System.setErr(err);
            GatewayOptions.select(null);
        }
    }

    @Test
    void badFlagsAreOneLineAndExitTwo() {
        Run run = run("extrapolate", "--base", "a", "--aligned", "b", "--alpha", "twelve");
        assertThat(run.code()).isEqualTo(2);
        assertThat(run.err()).startsWith("expo: ").contains("--alpha").doesNotContain("\tat ");
        assertThat(run.err().lines().count()).isEqualTo(2);   // the reason, then where to find usage
        assertThat(run("extrapolate", "--base", "a", "--aligned", "b", "--alpha", "1", "--layer-alphas", "1,2").code())
                .isEqualTo(2);
        assertThat(run("no-such-command").code()).isEqualTo(2);
        assertThat(run("extrapolate", "--base", "a", "--aligned", "b", "--alpha", "1", "--dtype", "int8",
                "--output", "o").err()).contains("--dtype must be bf16, f16 or f32");
    }

    @Test
    void everyCommandAnswersHelpWithItsUsage() {
        for (String[] command : new String[][] {{"generate"}, {"extrapolate"}, {"score"}, {"embed-image"},
                {"health"}, {"models", "list"}, {"jobs", "cancel"}, {"demo", "seed"}}) {
            String[] args = java.util.Arrays.copyOf(command, command.length + 1);
            args[command.length] = "--help";
            Run run = run(args);
            assertThat(run.code()).as(String.join(" ", args)).isZero();
            assertThat(run.out()).as(String.join(" ", args))
                    .startsWith("Usage: expo " + String.join(" ", command)).contains("--help");
        }
    }

    @Test
    void aMessagesFileMustBeAConversation(@TempDir Path dir) throws Exception {
        Path notJson = Files.writeString(dir.resolve("a.json"), "[{\"role\": \"user\"");
        Path noContent = Files.writeString(dir.resolve("b.json"), "[{\"role\": \"user\", \"text\": \"hi\"}]");
        Path empty = Files.writeString(dir.resolve("c.json"), "[]");
        assertThat(run("generate", "--model", "m", "--messages", notJson.toString()).err())
                .contains("is not JSON at line 1").doesNotContain("Source", "REDACTED");
        assertThat(run("score", "--model", "m", "--messages", noContent.toString()).err())
                .contains("entry 0", "string \"content\"");
        Run run = run("generate", "--model", "m", "--messages", empty.toString());
        assertThat(run.code()).isEqualTo(2);
        assertThat(run.err()).contains("non-empty JSON array");
        assertThat(run("generate", "--model", "m", "--messages", noContent.toString(), "--chat").err())
                .contains("--chat and --system go with --prompt TEXT");
        assertThat(run("score", "--model", "m", "--prompt", "hi", "--add-generation-prompt").code()).isEqualTo(2);
    }

    @Test
    void generateAndScoreTakeTokenIdsUnderEitherName() {
        for (String[] args : new String[][] {{"generate", "--prompt-ids"}, {"generate", "--ids"},
                {"score", "--ids"}, {"score", "--prompt-ids"}}) {
            Run run = run(args[0], "--model", "m", args[1], "1,two");
            assertThat(run.code()).as(String.join(" ", args)).isEqualTo(2);
            assertThat(run.err()).as(String.join(" ", args)).contains("must be comma-separated token ids")
                    .doesNotContain("Unknown option");
        }
    }

    @Test
    void anEmptyImageFileIsAUsageErrorNotATextOnlyRequest(@TempDir Path dir) throws Exception {
        Path empty = Files.createFile(dir.resolve("empty.png"));
        Run run = run("generate", "--model", "m", "--image", empty.toString(), "--prompt", "hi");
        assertThat(run.code()).isEqualTo(2);
        assertThat(run.err()).contains("image file " + empty + " is empty");
    }

    /**
     * The service config: a read that meets UNAVAILABLE (a replica restarting) is retried and succeeds; a call that
     * changes something is not repeated.
     */
    @Test
    void readsAreRetriedOnUnavailableAndChangesAreNot() throws Exception {
        java.util.concurrent.atomic.AtomicInteger lists = new java.util.concurrent.atomic.AtomicInteger();
        java.util.concurrent.atomic.AtomicInteger cancels = new java.util.concurrent.atomic.AtomicInteger();
        io.grpc.Server server = io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder.forPort(0)
                .addService(new dev.expo.api.v1.InferenceServiceGrpc.InferenceServiceImplBase() {
                    @Override
                    public void listModels(dev.expo.api.v1.ListModelsRequest request,
                                           io.grpc.stub.StreamObserver<dev.expo.api.v1.ListModelsResponse> out) {
                        if (lists.incrementAndGet() < 3) {
                            out.onError(io.grpc.Status.UNAVAILABLE.withDescription("restarting").asException());
                        } else {
                            out.onNext(dev.expo.api.v1.ListModelsResponse.getDefaultInstance());
                            out.onCompleted();
                        }
                    }
                })
                .addService(new dev.expo.api.v1.ExtrapolationServiceGrpc.ExtrapolationServiceImplBase() {
                    @Override
                    public void cancelJob(dev.expo.api.v1.CancelExtrapolationJobRequest request,
                                          io.grpc.stub.StreamObserver<dev.expo.api.v1.ExtrapolationJob> out) {
                        cancels.incrementAndGet();
                        out.onError(io.grpc.Status.UNAVAILABLE.withDescription("restarting").asException());
                    }
                }).build().start();
        try {
            Run list = run("--gateway", "127.0.0.1:" + server.getPort(), "models", "list");
            assertThat(list.code()).as(list.err()).isZero();
            assertThat(lists.get()).isEqualTo(3);
            Run cancel = run("--gateway", "127.0.0.1:" + server.getPort(), "jobs", "cancel", "job-1");
            assertThat(cancel.code()).isEqualTo(1);
            assertThat(cancels.get()).isEqualTo(1);
        } finally {
            server.shutdownNow();
        }
    }

    @Test
    void anUnreachableGatewaySaysSoInOneLine() throws Exception {
        int port;
        try (ServerSocket socket = new ServerSocket(0)) {
            port = socket.getLocalPort();
        }
        Run run = run("--gateway", "127.0.0.1:" + port, "models", "list");
        assertThat(run.code()).isEqualTo(1);
        assertThat(run.err().strip()).isEqualTo("expo: cannot reach the gateway at 127.0.0.1:" + port
                + " (is the stack running? try bin/expo-stack up)");
        // "models" and "jobs" alone list, as their "list" subcommands do (so they, too, try the gateway)
        for (String command : new String[] {"models", "jobs"}) {
            Run alone = run("--gateway", "127.0.0.1:" + port, command);
            assertThat(alone.code()).as(command).isEqualTo(1);
            assertThat(alone.err()).as(command).contains("cannot reach the gateway");
        }
        Run health = run("health", "--gateway", "127.0.0.1:" + port, "--timeout", "1");
        assertThat(health.code()).isEqualTo(1);
        assertThat(health.out()).contains("gateway").contains("UNREACHABLE");
        assertThat(run("health", "--gateway", "nonsense").err()).contains("must be HOST:PORT");
    }

    @Test
    void sizesParseInDecimalAndBinaryUnits() {
        assertThat(ExtrapolateCommand.parseSize("5GB")).isEqualTo(5_000_000_000L);
        assertThat(ExtrapolateCommand.parseSize("500MB")).isEqualTo(500_000_000L);
        assertThat(ExtrapolateCommand.parseSize("2GiB")).isEqualTo(2L << 30);
        assertThat(ExtrapolateCommand.parseSize("123")).isEqualTo(123);
        assertThatThrownBy(() -> ExtrapolateCommand.parseSize("lots")).isInstanceOf(CliException.class);
    }

    @Test
    void demoSeedWritesTheDemoPairOnceAndDeterministically(@TempDir Path store) throws Exception {
        Run first = run("demo", "seed", "--store", store.toString());
        assertThat(first.code()).as(first.err()).isZero();
        assertThat(first.out()).contains("demo-sft").contains("demo-dpo");
        byte[] sft = Files.readAllBytes(store.resolve("demo-sft/model.safetensors"));
        assertThat(run("demo", "seed", "--store", store.toString()).out()).contains("already");
        ModelsCheck.assertDemoPair(store);
        // Same code, same bytes.
        Path again = Files.createTempDirectory("demo-again");
        run("demo", "seed", "--store", again.toString());
        assertThat(Files.readAllBytes(again.resolve("demo-sft/model.safetensors"))).isEqualTo(sft);
    }
}

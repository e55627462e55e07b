package dev.expo.benchmarks;

import dev.expo.api.v1.GenerateRequest;
import dev.expo.api.v1.GenerateResponse;
import dev.expo.api.v1.InferenceServiceGrpc;
import dev.expo.api.v1.LoadModelRequest;
import dev.expo.api.v1.SamplingParams;
import dev.expo.api.v1.TokenIds;
import io.grpc.ManagedChannel;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.StreamObserver;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * The inference service's serving benchmark of docs/benchmarks.md: the 134M-parameter model of the model runtime
 * benchmark served by a real inference service and gateway (two processes on loopback, started here as
 * bin/expo-stack starts them), and N concurrent Generate streams (distinct 128-token prompts, 128 greedy new tokens
 * past end-of-sequence) sent straight to the inference service and through the gateway, alternately.
 *
 * <p>Per run: time to first token (client-side, from sending the request to the first token) and aggregate tokens/s
 * (all generated tokens over the wall time from the first request sent to the last stream ended). The gateway's own
 * cost per token is measured on pairs of identical streams decoded in the same steps, one direct and one through the
 * gateway (see {@link #perTokenOverhead}); a unary round trip with the service idle is printed alongside.
 *
 * <p>{@code ServingBenchmark [--work DIR] [--streams 1,4,8,16] [--prompt 128] [--new 128] [--rounds 1]}
 */
public final class ServingBenchmark {

    private static final String MODEL = "llama-134m";
    /**
     * The prompt of the per-token gateway pairs: short enough that all four pairs' prompts (128 positions) are
     * prefilled in one chunk (inference.batching.max-prefill-positions, 256 by default), so both streams of a pair
     * start in the same step whichever order they reach the service in.
     */
    private static final int PAIR_PROMPT = 16;

    private ServingBenchmark() {
    }

    /**
     * One stream: when its request was sent, its first token came and it ended (System.nanoTime), its tokens, and
     * each token's arrival (nanoseconds after sending).
     */
    record StreamResult(long sent, long firstToken, long ended, int tokens, List<Integer> ids, long[] arrivals) {
    }

    /** N concurrent streams on one path. */
    record Run(int streams, String path, List<StreamResult> results) {

        double aggregateTokensPerSecond() {
            long start = results.stream().mapToLong(StreamResult::sent).min().orElseThrow();
            long end = results.stream().mapToLong(StreamResult::ended).max().orElseThrow();
            return results.stream().mapToInt(StreamResult::tokens).sum() / ((end - start) / 1e9);
        }

        double ttftMillis(double quantile) {
            return quantile(results.stream().mapToDouble(r -> (r.firstToken() - r.sent()) / 1e6).toArray(), quantile);
        }

        double interTokenMillis() {
            List<Double> gaps = new ArrayList<>();
            for (StreamResult r : results) {
                for (int i = 1; i < r.arrivals().length; i++) {
                    gaps.add((r.arrivals()[i] - r.arrivals()[i - 1]) / 1e6);
                }
            }
            return quantile(gaps.stream().mapToDouble(Double::doubleValue).toArray(), 0.5);
        }
    }

    @Command(name = "bin/expo-bench serving", description = "Concurrent Generate streams through the inference "
            + "service and the gateway, as processes: TTFT, aggregate tokens/s, gateway cost (docs/benchmarks.md).")
    static final class Options {
        @Option(names = "--work", description = "where the model and store are prepared (default: bench-work)")
        Path work = Path.of("bench-work");
        @Option(names = "--streams", split = ",", description = "concurrent streams per row (default: 1,4,8,16)")
        List<Integer> streamCounts = List.of(1, 4, 8, 16);
        @Option(names = "--prompt", description = "prompt tokens per stream (default: 128)")
        int promptLength = 128;
        @Option(names = "--new", description = "new tokens per stream (default: 128)")
        int newTokens = 128;
        @Option(names = "--rounds", description = "rounds of each row (default: 1)")
        int rounds = 1;
        @Option(names = "--kv-cache-dtype", description = "the inference service's KV cache: float32 or bfloat16 "
                + "(default: float32)")
        String kvCacheDtype = "float32";
        @Option(names = "--device", description = "the inference service's inference.device: cpu, gpu, gpu-fp32 or "
                + "auto (default: cpu); a GPU needs the build with the CUDA flavour of PyTorch (docs/gpu.md)")
        String device = "cpu";
        @Option(names = "--max-prefill-positions", description = "the inference service's prompt positions "
                + "prefilled between two decode steps (default: the service's own, 256)")
        Integer maxPrefillPositions;
        @Option(names = "--long-prompt", description = "tokens of a prompt sent while four streams run, to see how "
                + "long they pause (default: 1024; 0 skips it)")
        int longPrompt = 1024;
        @Option(names = {"-h", "--help"}, usageHelp = true, description = "this help")
        boolean help;
    }

    public static void main(String[] args) throws Exception {
        Options options = BenchOptions.parse(new Options(), args);
        ServiceProcesses.runReportingExits(() -> run(options));
    }

    private static void run(Options options) throws Exception {
        Path work = options.work;
        List<Integer> streamCounts = options.streamCounts;
        int promptLength = options.promptLength;
        int newTokens = options.newTokens;
        int rounds = options.rounds;
        String kvCacheDtype = options.kvCacheDtype;
        Path store = prepareStore(work);
        Path root = Path.of(System.getProperty("expo.bench.root", ".")).toAbsolutePath();
        int inferencePort = freePort();
        int gatewayPort = freePort();
        try (ServiceProcesses services = new ServiceProcesses(root, work.resolve("serving-logs"))) {
            // Prefix caching off: every round sends the same prompts on both paths (so that their tokens can be
            // compared), which it would otherwise serve from the previous round's caches instead of prefilling them.
            services.start("inference-service", inferencePort, store, inferencePort,
                    System.getProperty("expo.bench.inference-flags", "") + " -Dinference.device=" + options.device
                            + " -Dinference.kv-cache-dtype="
                            + kvCacheDtype + " -Dinference.batching.prefix-cache-entries=0"
                            + (options.maxPrefillPositions == null ? "" : " -Dinference.batching.max-prefill-positions="
                            + options.maxPrefillPositions));
            services.start("gateway", gatewayPort, store, inferencePort, "");
            ManagedChannel direct = channel(inferencePort);
            ManagedChannel gateway = NettyChannelBuilder.forAddress("127.0.0.1", gatewayPort).usePlaintext()
                    .intercept(Bearer.of(services::adminKey)).build();
            try {
                awaitReady(services, direct, gateway);
                System.out.printf("Serving benchmark: %d cores, Java %s; inference service and gateway as processes "
                                + "on loopback (logs in %s)%n", Runtime.getRuntime().availableProcessors(),
                        Runtime.version(), work.resolve("serving-logs"));
                System.out.printf("Model %s (134M parameters, BF16, %s), prompt %d tokens, %d new tokens (greedy, "
                        + "ignore_eos), max batch 16, prefix caching off, %s prompt positions prefilled per step%n",
                        MODEL, options.device.equals("cpu") ? "CPU decoder, " + kvCacheDtype + " KV cache"
                                : "inference.device=" + options.device, promptLength, newTokens,
                        options.maxPrefillPositions == null ? "256 (the default)" : options.maxPrefillPositions);
                InferenceServiceGrpc.newBlockingStub(gateway).loadModel(LoadModelRequest.newBuilder().setModel(MODEL)
                        .build());
                // Warm-up, as a service that has been serving a while: a few thousand streamed tokens and unary
                // calls on both paths, so the JIT has compiled the model, the services' and the gateway's paths.
                System.out.println("Warming up...");
                for (int warm : List.of(1, 16, 8, 16)) {
                    run(direct, warm, "direct", promptLength, 48, 7);
                    run(gateway, warm, "gateway", promptLength, 48, 7);
                }
                unaryOverhead(direct, gateway, 10_000);
                List<Run> runs = new ArrayList<>();
                for (int round = 0; round < rounds; round++) {
                    for (int streams : streamCounts) {
                        // Alternate which path goes first, so neither always runs on a warmer machine.
                        boolean gatewayFirst = (round + streams) % 2 == 1;
                        for (String path : gatewayFirst ? List.of("gateway", "direct") : List.of("direct", "gateway")) {
                            Run run = run(path.equals("gateway") ? gateway : direct, streams, path, promptLength,
                                    newTokens, 1000 + streams);
                            System.out.printf(Locale.ROOT, "  %2d stream(s) %-8s TTFT median %7.1f ms, aggregate "
                                            + "%6.1f tokens/s, inter-token median %5.1f ms%n", streams, path,
                                    run.ttftMillis(0.5), run.aggregateTokensPerSecond(), run.interTokenMillis());
                            runs.add(run);
                        }
                        checkSameTokens(runs, streams);
                    }
                }
                double[] perToken = perTokenOverhead(direct, gateway, 4, promptLength, PAIR_PROMPT, newTokens);
                double[] unary = unaryOverhead(direct, gateway, 1000);
                report(runs, streamCounts, perToken, unary);
                if (options.longPrompt > 0) {
                    longPromptArrives(gateway, options.longPrompt);
                }
            } finally {
                direct.shutdownNow();
                gateway.shutdownNow();
            }
        }
    }

    /** The benchmark model in a store of its own: the model runtime benchmark's weights and a 32000-word tokenizer. */
    static Path prepareStore(Path work) throws IOException {
        Path weights = work.resolve("llama-134m");
        if (!Files.exists(weights.resolve("config.json"))) {
            System.out.println("Writing the synthetic 134M-parameter LLaMA to " + weights + " ...");
            SyntheticLlama.writeModel(new SyntheticLlama.Shape(32000, 768, 2048, 12, 12), 2_000_000_000L, weights);
        }
        Path store = work.resolve("serving-store");
        Path model = Files.createDirectories(store.resolve(MODEL));
        try (var files = Files.list(weights)) {
            for (Path file : files.toList()) {
                Path target = model.resolve(file.getFileName().toString());
                if (!Files.exists(target)) {
                    Files.createLink(target, file);
                }
            }
        }
        Path tokenizer = model.resolve("tokenizer.json");
        if (!Files.exists(tokenizer)) {
            Files.writeString(tokenizer, wordTokenizer(32000));
        }
        return store.toAbsolutePath();
    }

    /**
     * A word-level tokenizer.json with one word per id ({@code <unk>}, {@code <s>}, {@code </s>}, then w3, w4...):
     * every id the random model emits decodes to text, as with a real vocabulary.
     */
    static String wordTokenizer(int vocab) {
        StringBuilder words = new StringBuilder("\"<unk>\": 0, \"<s>\": 1, \"</s>\": 2");
        for (int id = 3; id < vocab; id++) {
            words.append(", \"w").append(id).append("\": ").append(id);
        }
        return """
                {"version": "1.0", "truncation": null, "padding": null,
                 "added_tokens": [
                   {"id": 0, "content": "<unk>", "single_word": false, "lstrip": false, "rstrip": false,
                    "normalized": false, "special": true},
                   {"id": 1, "content": "<s>", "single_word": false, "lstrip": false, "rstrip": false,
                    "normalized": false, "special": true},
                   {"id": 2, "content": "</s>", "single_word": false, "lstrip": false, "rstrip": false,
                    "normalized": false, "special": true}],
                 "normalizer": null, "pre_tokenizer": {"type": "WhitespaceSplit"}, "post_processor": null,
                 "decoder": null,
                 "model": {"type": "WordLevel", "unk_token": "<unk>", "vocab": {%s}}}
                """.formatted(words);
    }

    /** N concurrent greedy streams, each with its own random prompt; waits for all to end. */
    static Run run(ManagedChannel channel, int streams, String path, int promptLength, int newTokens, long seed)
            throws Exception {
        SplittableRandom random = new SplittableRandom(seed);
        List<GenerateRequest> requests = new ArrayList<>();
        for (int s = 0; s < streams; s++) {
            requests.add(GenerateRequest.newBuilder().setModel(MODEL).setTokenIds(randomIds(random, promptLength))
                    .setSampling(SamplingParams.newBuilder().setTemperature(0f).setMaxNewTokens(newTokens)
                            .setIgnoreEos(true)).build());
        }
        List<CompletableFuture<StreamResult>> futures = new ArrayList<>();
        for (GenerateRequest request : requests) {
            futures.add(stream(channel, request));
        }
        List<StreamResult> results = new ArrayList<>();
        for (CompletableFuture<StreamResult> future : futures) {
            results.add(future.get(10, TimeUnit.MINUTES));
        }
        for (StreamResult result : results) {
            if (result.tokens() != newTokens) {
                throw new IllegalStateException(path + ": a stream ended after " + result.tokens() + " tokens, not "
                        + newTokens);
            }
        }
        return new Run(streams, path, results);
    }

    /** Sends one Generate request; completes with its timings when the stream ends. */
    static CompletableFuture<StreamResult> stream(ManagedChannel channel, GenerateRequest request) {
        CompletableFuture<StreamResult> future = new CompletableFuture<>();
        long sent = System.nanoTime();
        InferenceServiceGrpc.newStub(channel).withDeadlineAfter(10, TimeUnit.MINUTES).generate(request,
                new StreamObserver<>() {
                    final List<Integer> ids = new ArrayList<>();
                    final List<Long> arrivals = new ArrayList<>();

                    @Override
                    public void onNext(GenerateResponse response) {
                        long now = System.nanoTime() - sent;
                        for (int id : response.getTokenIdsList()) {
                            ids.add(id);
                            arrivals.add(now);
                        }
                    }

                    @Override
                    public void onError(Throwable t) {
                        future.completeExceptionally(t);
                    }

                    @Override
                    public void onCompleted() {
                        long[] times = arrivals.stream().mapToLong(Long::longValue).toArray();
                        long ended = System.nanoTime();
                        future.complete(new StreamResult(sent, times.length == 0 ? ended : sent + times[0], ended,
                                ids.size(), ids, times));
                    }
                });
        return future;
    }

    /** Greedy decoding: the gateway must not change a single token. */
    private static void checkSameTokens(List<Run> runs, int streams) {
        List<Run> pair = runs.subList(runs.size() - 2, runs.size());
        for (int s = 0; s < streams; s++) {
            if (!pair.get(0).results().get(s).ids().equals(pair.get(1).results().get(s).ids())) {
                throw new IllegalStateException("stream " + s + " of " + streams + " differs between direct and the "
                        + "gateway");
            }
        }
    }

    /**
     * What the gateway adds to each streamed token, under load: pairs of identical greedy streams, one sent direct
     * and one through the gateway, queued together behind a long prefill so that they are admitted in the same
     * iteration, prefilled in the same chunk and decoded in the same steps; each token of a pair leaves the inference
     * service at the same moment (within one step's bookkeeping), so its arrival time through the gateway minus its
     * arrival time direct is the gateway's cost. Which of a pair is sent first alternates. Returns {median, p90,
     * pairs, tokens compared}.
     */
    static double[] perTokenOverhead(ManagedChannel direct, ManagedChannel gateway, int pairs, int blockerLength,
                                     int pairPrompt, int newTokens) throws Exception {
        SplittableRandom random = new SplittableRandom(99);
        CompletableFuture<StreamResult> blocker = stream(direct, GenerateRequest.newBuilder().setModel(MODEL)
                .setTokenIds(randomIds(random, 4 * blockerLength))
                .setSampling(SamplingParams.newBuilder().setTemperature(0f).setMaxNewTokens(1)).build());
        Thread.sleep(150);   // the blocker is prefilling: the pairs queue up behind it and are admitted together
        List<CompletableFuture<StreamResult>> viaDirect = new ArrayList<>();
        List<CompletableFuture<StreamResult>> viaGateway = new ArrayList<>();
        for (int p = 0; p < pairs; p++) {
            GenerateRequest request = GenerateRequest.newBuilder().setModel(MODEL)
                    .setTokenIds(randomIds(random, pairPrompt))
                    .setSampling(SamplingParams.newBuilder().setTemperature(0f).setMaxNewTokens(newTokens)
                            .setIgnoreEos(true)).build();
            if (p % 2 == 0) {
                viaDirect.add(stream(direct, request));
                viaGateway.add(stream(gateway, request));
            } else {
                viaGateway.add(stream(gateway, request));
                viaDirect.add(stream(direct, request));
            }
        }
        blocker.get(10, TimeUnit.MINUTES);
        List<Double> differences = new ArrayList<>();
        List<Double> gaps = new ArrayList<>();
        for (int p = 0; p < pairs; p++) {
            StreamResult d = viaDirect.get(p).get(10, TimeUnit.MINUTES);
            StreamResult g = viaGateway.get(p).get(10, TimeUnit.MINUTES);
            if (!d.ids().equals(g.ids())) {
                throw new IllegalStateException("pair " + p + ": the gateway changed the tokens");
            }
            for (int i = 0; i < d.arrivals().length; i++) {
                differences.add(((g.sent() + g.arrivals()[i]) - (d.sent() + d.arrivals()[i])) / 1e6);
                if (i > 0) {
                    gaps.add((d.arrivals()[i] - d.arrivals()[i - 1]) / 1e6);
                }
            }
        }
        double[] values = differences.stream().mapToDouble(Double::doubleValue).toArray();
        double median = quantile(values, 0.5);
        double step = quantile(gaps.stream().mapToDouble(Double::doubleValue).toArray(), 0.5);
        if (Math.abs(median) > step / 2) {
            System.out.printf(Locale.ROOT, "warning: the pairs were not decoded in the same steps (median difference "
                    + "%.1f ms, step %.1f ms): the per-token figure below is not the gateway's cost%n", median, step);
        }
        return new double[] {median, quantile(values, 0.9), pairs, values.length};
    }

    /**
     * A long prompt sent through the gateway while four streams (32-token prompts) decode: how long its first token
     * takes, and how long the running streams pause for its prefill (their longest gap between two tokens), against
     * their usual gap. With chunked prefill the pause is one chunk and a decode step, not the whole prompt.
     */
    static void longPromptArrives(ManagedChannel gateway, int length) throws Exception {
        SplittableRandom random = new SplittableRandom(17);
        List<CompletableFuture<StreamResult>> running = new ArrayList<>();
        for (int s = 0; s < 4; s++) {
            running.add(stream(gateway, GenerateRequest.newBuilder().setModel(MODEL).setTokenIds(randomIds(random, 32))
                    .setSampling(SamplingParams.newBuilder().setTemperature(0f).setMaxNewTokens(400)
                            .setIgnoreEos(true)).build()));
        }
        Thread.sleep(1000);
        StreamResult arriving = stream(gateway, GenerateRequest.newBuilder().setModel(MODEL)
                .setTokenIds(randomIds(random, length)).setSampling(SamplingParams.newBuilder().setTemperature(0f)
                        .setMaxNewTokens(1)).build()).get(10, TimeUnit.MINUTES);
        List<Double> gaps = new ArrayList<>();
        boolean outlived = true;
        for (CompletableFuture<StreamResult> future : running) {
            StreamResult r = future.get(10, TimeUnit.MINUTES);
            outlived &= r.sent() + r.arrivals()[r.arrivals().length - 1] > arriving.firstToken();
            for (int i = 1; i < r.arrivals().length; i++) {
                gaps.add((r.arrivals()[i] - r.arrivals()[i - 1]) / 1e6);
            }
        }
        double[] values = gaps.stream().mapToDouble(Double::doubleValue).toArray();
        System.out.printf(Locale.ROOT, "A %d-token prompt arriving while 4 streams run (gateway): its first token in "
                        + "%.2f s; the running streams' longest pause %.0f ms (median gap %.1f ms)%s%n", length,
                (arriving.firstToken() - arriving.sent()) / 1e9, Arrays.stream(values).max().orElse(0),
                quantile(values, 0.5), outlived ? "" : " (warning: they ended before its first token)");
    }

    /** BOS, then random ids of the benchmark model's vocabulary. */
    private static TokenIds.Builder randomIds(SplittableRandom random, int length) {
        TokenIds.Builder ids = TokenIds.newBuilder().addIds(1);
        for (int t = 1; t < length; t++) {
            ids.addIds(3 + random.nextInt(31997));
        }
        return ids;
    }

    /** Median unary round trip (LoadModel of the loaded model), direct and through the gateway, interleaved. */
    static double[] unaryOverhead(ManagedChannel direct, ManagedChannel gateway, int calls) {
        LoadModelRequest request = LoadModelRequest.newBuilder().setModel(MODEL).build();
        InferenceServiceGrpc.InferenceServiceBlockingStub d = InferenceServiceGrpc.newBlockingStub(direct);
        InferenceServiceGrpc.InferenceServiceBlockingStub g = InferenceServiceGrpc.newBlockingStub(gateway);
        double[] directTimes = new double[calls];
        double[] gatewayTimes = new double[calls];
        for (int i = 0; i < calls; i++) {
            long t0 = System.nanoTime();
            d.loadModel(request);
            long t1 = System.nanoTime();
            g.loadModel(request);
            long t2 = System.nanoTime();
            directTimes[i] = (t1 - t0) / 1e6;
            gatewayTimes[i] = (t2 - t1) / 1e6;
        }
        return new double[] {quantile(directTimes, 0.5), quantile(gatewayTimes, 0.5)};
    }

    private static void report(List<Run> runs, List<Integer> streamCounts, double[] perToken, double[] unary) {
        System.out.println();
        System.out.println("| streams | path | TTFT median | TTFT p90 | aggregate tokens/s | inter-token median |");
        System.out.println("|---|---|---|---|---|---|");
        for (int streams : streamCounts) {
            for (String path : List.of("direct", "gateway")) {
                Run run = best(runs, streams, path);
                System.out.printf(Locale.ROOT, "| %d | %s | %.0f ms | %.0f ms | %.1f | %.1f ms |%n", streams, path,
                        run.ttftMillis(0.5), run.ttftMillis(0.9), run.aggregateTokensPerSecond(),
                        run.interTokenMillis());
            }
        }
        System.out.println();
        if (streamCounts.contains(1) && streamCounts.contains(8)) {
            double one = best(runs, 1, "gateway").aggregateTokensPerSecond();
            double eight = best(runs, 8, "gateway").aggregateTokensPerSecond();
            // The ratio to one stream is a figure, not a target: on two cores the prefill, which does not batch, and
            // a memory-bound batch-8 step cap it (docs/benchmarks.md).
            System.out.printf(Locale.ROOT, "Through the gateway: 8 streams %.1f tokens/s (target: >= 70 tokens/s) = "
                    + "%.2fx one stream (%.1f)%n", eight, eight / one, one);
            // The best of each row can come from different minutes of a drifting machine; within a round the two
            // ran a minute or two apart.
            List<Run> ones = runs.stream().filter(r -> r.streams() == 1 && r.path().equals("gateway")).toList();
            List<Run> eights = runs.stream().filter(r -> r.streams() == 8 && r.path().equals("gateway")).toList();
            double[] ratios = new double[Math.min(ones.size(), eights.size())];
            for (int i = 0; i < ratios.length; i++) {
                ratios[i] = eights.get(i).aggregateTokensPerSecond() / ones.get(i).aggregateTokensPerSecond();
            }
            System.out.printf(Locale.ROOT, "  the same ratio round by round: %s; median %.2fx%n",
                    String.join(", ", Arrays.stream(ratios).mapToObj(r -> String.format(Locale.ROOT, "%.2fx", r))
                            .toList()), quantile(ratios, 0.5));
        }
        System.out.printf(Locale.ROOT, "Gateway cost per token (%d pairs of identical streams decoded in the same "
                        + "steps, one direct and one through the gateway, %d tokens): median %+.2f ms, p90 %+.2f ms "
                        + "(target < 1 ms at the median)%n", (int) perToken[2], (int) perToken[3], perToken[0],
                perToken[1]);
        System.out.printf(Locale.ROOT, "Unary round trip with the service idle (median of 1000 LoadModel calls): "
                + "direct %.2f ms, gateway %.2f ms: %+.2f ms%n", unary[0], unary[1], unary[1] - unary[0]);
    }

    /** The run of the highest aggregate among rounds. */
    private static Run best(List<Run> runs, int streams, String path) {
        return runs.stream().filter(r -> r.streams() == streams && r.path().equals(path))
                .max((a, b) -> Double.compare(a.aggregateTokensPerSecond(), b.aggregateTokensPerSecond()))
                .orElseThrow();
    }

    /**
     * The q-quantile, interpolated between the two nearest values (numpy's default): the median of two rounds is
     * their mean, not the higher one.
     */
    static double quantile(double[] values, double q) {
        double[] sorted = values.clone();
        Arrays.sort(sorted);
        double position = q * (sorted.length - 1);
        int below = (int) Math.floor(position);
        int above = Math.min(sorted.length - 1, below + 1);
        return sorted[below] + (position - below) * (sorted[above] - sorted[below]);
    }

    static ManagedChannel channel(int port) {
        return NettyChannelBuilder.forAddress("127.0.0.1", port).usePlaintext().build();
    }

    static int freePort() throws IOException {
        try (ServerSocket socket = new ServerSocket(0)) {
            return socket.getLocalPort();
        }
    }

    static void awaitReady(ServiceProcesses services, ManagedChannel direct, ManagedChannel gateway)
            throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofMinutes(3).toNanos();
        while (true) {
            services.checkAlive();
            try {
                HealthCheckResponse health = HealthGrpc.newBlockingStub(direct).withDeadlineAfter(2, TimeUnit.SECONDS)
                        .check(HealthCheckRequest.newBuilder().setService("expo.v1.InferenceService").build());
                if (health.getStatus() == HealthCheckResponse.ServingStatus.SERVING) {
                    InferenceServiceGrpc.newBlockingStub(gateway).withDeadlineAfter(5, TimeUnit.SECONDS)
                            .listModels(dev.expo.api.v1.ListModelsRequest.getDefaultInstance());
                    return;
                }
            } catch (RuntimeException notYet) {
                // Starting.
            }
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("the inference service and gateway did not start in 3 minutes");
            }
            Thread.sleep(250);
        }
    }
}

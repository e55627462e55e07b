package dev.expo.benchmarks;

import dev.expo.api.v1.GenerateRequest;
import dev.expo.api.v1.GenerateResponse;
import dev.expo.api.v1.InferenceServiceGrpc;
import dev.expo.api.v1.LoadModelRequest;
import dev.expo.api.v1.SamplingParams;
import dev.expo.api.v1.TokenIds;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.StreamObserver;
import org.HdrHistogram.ConcurrentHistogram;
import org.HdrHistogram.Histogram;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;

/**
 * The load test of docs/benchmarks.md: N concurrent Generate streams through the gateway for a bounded time, on the
 * demo model, against inference replicas and a gateway started here as processes on loopback (nothing else is ever
 * addressed). Each stream, when it ends, is replaced by the next, so N are open all the time. Reported: errors by
 * status, tokens/s, time to first token and inter-token gaps (p50/p99), and every process's resident memory sampled
 * through the run. Then the gateway's own cost per token under that load: pairs of identical greedy streams, one
 * straight to a replica and one through the gateway, sent together and decoded in the same steps, so the difference
 * in each token's arrival is what the gateway adds (when the gateway's forwarding of the request takes longer than a
 * step, its stream is admitted a step later and the difference includes those steps: that is the delay its client
 * sees).
 *
 * <p>{@code bin/expo-bench load [--streams 500] [--duration 60] [--new 128] [--replicas 1] [--pairs 16]}
 */
public final class LoadBenchmark {

    private static final String MODEL = "demo-sft";

    private LoadBenchmark() {
    }

    @Command(name = "bin/expo-bench load", description = "N concurrent streams through the gateway for a bounded "
            + "time: errors, tokens/s, TTFT and inter-token p50/p99, memory; the gateway's cost per token "
            + "(docs/benchmarks.md).")
    static final class Options {
        @Option(names = "--store", description = "a model store holding demo-sft (bin/expo-bench load seeds one)",
                required = true)
        Path store;
        @Option(names = "--work", description = "where the logs go (default: bench-work)")
        Path work = Path.of("bench-work");
        @Option(names = "--streams", description = "concurrent streams (default: 500)")
        int streams = 500;
        @Option(names = "--duration", description = "seconds of load after the warm-up (default: 60)")
        int duration = 60;
        @Option(names = "--warm-up", description = "seconds of load before the measured run (default: 15)")
        int warmUp = 15;
        @Option(names = "--new", description = "new tokens per stream (default: 128)")
        int newTokens = 128;
        @Option(names = "--prompt", description = "prompt tokens per stream (default: 16)")
        int prompt = 16;
        @Option(names = "--replicas", description = "inference processes behind the gateway (default: 1)")
        int replicas = 1;
        @Option(names = "--pairs", description = "direct/gateway stream pairs for the per-token cost (default: 16)")
        int pairs = 16;
        @Option(names = {"-h", "--help"}, usageHelp = true, description = "this help")
        boolean help;
    }

    /** What a phase of load measured. Histograms in microseconds. */
    static final class Tally {
        final Histogram ttft = new ConcurrentHistogram(3);
        final Histogram interToken = new ConcurrentHistogram(3);
        final LongAdder tokens = new LongAdder();
        final LongAdder streams = new LongAdder();
        final Map<Status.Code, LongAdder> errors = new ConcurrentHashMap<>();
        final Map<Status.Code, String> firstError = new ConcurrentHashMap<>();
    }

    public static void main(String[] args) throws Exception {
        Options options = BenchOptions.parse(new Options(), args);
        ServiceProcesses.runReportingExits(() -> run(options));
        System.exit(0);
    }

    private static void run(Options options) throws Exception {
        Path root = Path.of(System.getProperty("expo.bench.root", ".")).toAbsolutePath();
        Path store = options.store.toAbsolutePath();
        if (!Files.isDirectory(store.resolve(MODEL))) {
            throw new IllegalArgumentException(store + " has no " + MODEL + " (bin/expo demo seed --store " + store
                    + ")");
        }
        // Every stream in one batch per replica (the demo model is small), and room to queue them all.
        int perReplica = (options.streams + options.replicas - 1) / options.replicas + 2 * options.pairs;
        String inferenceFlags = System.getProperty("expo.bench.inference-flags", "")
                + " -Dinference.batching.max-batch-size=" + perReplica
                + " -Dinference.batching.max-queued=" + perReplica + " -Dinference.batching.prefix-cache-entries=0";
        List<Integer> ports = new ArrayList<>();
        try (ServiceProcesses services = new ServiceProcesses(root, options.work.resolve("load-logs"))) {
            List<String> replicas = new ArrayList<>();
            for (int r = 1; r <= options.replicas; r++) {
                int port = ServingBenchmark.freePort();
                ports.add(port);
                String name = r == 1 ? "inference-service" : "inference-service-" + r;
                replicas.add(name);
                services.start(name, "inference-service", port, store, List.of(), inferenceFlags);
            }
            int gatewayPort = ServingBenchmark.freePort();
            services.start("gateway", "gateway", gatewayPort, store, ports.stream().map(p -> "127.0.0.1:" + p)
                    .toList(), "");
            ManagedChannel gateway = NettyChannelBuilder.forAddress("127.0.0.1", gatewayPort).usePlaintext()
                    .intercept(Bearer.of(services::adminKey)).build();
            ManagedChannel direct = ServingBenchmark.channel(ports.getFirst());
            try {
                ServingBenchmark.awaitReady(services, direct, gateway);
                for (int port : ports) {
                    ManagedChannel replica = ServingBenchmark.channel(port);
                    InferenceServiceGrpc.newBlockingStub(replica).loadModel(LoadModelRequest.newBuilder()
                            .setModel(MODEL).build());
                    replica.shutdownNow();
                }
                System.out.printf(Locale.ROOT, "Load: %d cores, Java %s; %d inference replica(s) and a gateway as "
                                + "processes on loopback (logs in %s)%n", Runtime.getRuntime().availableProcessors(),
                        Runtime.version(), options.replicas, options.work.resolve("load-logs"));
                System.out.printf(Locale.ROOT, "%s, %d concurrent streams through the gateway, each %d prompt + %d "
                                + "greedy new tokens (ignore_eos), replaced as it ends; batch up to %d per replica%n",
                        MODEL, options.streams, options.prompt, options.newTokens, perReplica);
                List<String> measured = new ArrayList<>(replicas);
                measured.add("gateway");

                Tally warm = new Tally();
                System.out.printf(Locale.ROOT, "Warm-up: %d s...%n", options.warmUp);
                load(gateway, options, warm, options.warmUp);
                Map<String, Long> rssAfterWarmUp = rss(services, measured);
                Map<String, Long> heapAfterWarmUp = heapAfterGc(services, measured);

                Tally tally = new Tally();
                Map<String, List<Long>> samples = new TreeMap<>();
                measured.forEach(s -> samples.put(s, new ArrayList<>()));
                Thread sampler = Thread.ofPlatform().daemon().start(() -> {
                    try {
                        while (!Thread.currentThread().isInterrupted()) {
                            rss(services, measured).forEach((s, kb) -> samples.get(s).add(kb));
                            Thread.sleep(1000);
                        }
                    } catch (InterruptedException | IOException e) {
                        Thread.currentThread().interrupt();
                    }
                });
                System.out.printf(Locale.ROOT, "Measured: %d s...%n", options.duration);
                Map<String, Long> servedBefore = served(replicas, ports);
                double seconds = load(gateway, options, tally, options.duration);
                sampler.interrupt();
                Map<String, Long> servedAfter = served(replicas, ports);
                if (replicas.size() > 1) {
                    System.out.printf(Locale.ROOT, "  streams per replica: %s%n", String.join(", ", replicas.stream()
                            .map(r -> r + " " + (servedAfter.get(r) - servedBefore.get(r))).toList()));
                }
                Map<String, Long> rssAtEnd = rss(services, measured);
                report(options, tally, seconds, rssAfterWarmUp, samples, rssAtEnd);
                Map<String, Long> heapAtEnd = heapAfterGc(services, measured);
                for (String name : measured) {
                    System.out.printf(Locale.ROOT, "  heap after a full GC %-20s after warm-up %5d MiB, at the end %5d "
                            + "MiB%n", name, heapAfterWarmUp.get(name) / 1024, heapAtEnd.get(name) / 1024);
                }

                System.out.printf(Locale.ROOT, "Per-token cost of the gateway under the same load (%d pairs of "
                        + "identical streams, direct and through the gateway, %d tokens each)...%n", options.pairs,
                        options.newTokens);
                perTokenUnderLoad(direct, gateway, options);
            } finally {
                gateway.shutdownNow();
                direct.shutdownNow();
            }
        }
    }

    private static GenerateRequest request(SplittableRandom random, Options options) {
        TokenIds.Builder ids = TokenIds.newBuilder();
        for (int i = 0; i < options.prompt; i++) {
            ids.addIds(3 + random.nextInt(200));
        }
        return GenerateRequest.newBuilder().setModel(MODEL).setTokenIds(ids).setSampling(SamplingParams.newBuilder()
                .setTemperature(0f).setMaxNewTokens(options.newTokens).setIgnoreEos(true)).build();
    }

    /** N streams open for {@code seconds}, each replaced as it ends; returns the wall time until the last ended. */
    private static double load(ManagedChannel gateway, Options options, Tally tally, int seconds)
            throws InterruptedException {
        long start = System.nanoTime();
        long stopAt = start + TimeUnit.SECONDS.toNanos(seconds);
        CountDownLatch workers = new CountDownLatch(options.streams);
        for (int w = 0; w < options.streams; w++) {
            new Worker(gateway, options, tally, stopAt, new SplittableRandom(w), workers).next();
        }
        if (!workers.await(seconds + 300L, TimeUnit.SECONDS)) {
            System.out.println("warning: streams still open 5 minutes after the end");
        }
        return (System.nanoTime() - start) / 1e9;
    }

    /** One of the N: a stream, then the next, until the time is up. */
    private record Worker(ManagedChannel channel, Options options, Tally tally, long stopAt, SplittableRandom random,
                          CountDownLatch done) {

        void next() {
            if (System.nanoTime() >= stopAt) {
                done.countDown();
                return;
            }
            long sent = System.nanoTime();
            AtomicLong last = new AtomicLong();
            InferenceServiceGrpc.newStub(channel).withDeadlineAfter(120, TimeUnit.SECONDS).generate(
                    request(random, options), new StreamObserver<>() {
                        @Override
                        public void onNext(GenerateResponse response) {
                            long now = System.nanoTime();
                            int n = response.getTokenIdsCount();
                            if (n == 0) {
                                return;
                            }
                            long previous = last.getAndSet(now);
                            if (previous == 0) {
                                tally.ttft.recordValue((now - sent) / 1000);
                            } else {
                                tally.interToken.recordValue((now - previous) / 1000);
                            }
                            tally.tokens.add(n);
                        }

                        @Override
                        public void onError(Throwable t) {
                            Status status = Status.fromThrowable(t);
                            tally.errors.computeIfAbsent(status.getCode(), c -> new LongAdder()).increment();
                            tally.firstError.putIfAbsent(status.getCode(), String.valueOf(status.getDescription()));
                            next();
                        }

                        @Override
                        public void onCompleted() {
                            tally.streams.increment();
                            next();
                        }
                    });
        }
    }

    /**
     * The Java heap each process still uses after a full GC (KiB, from {@code jcmd GC.heap_info}): what it holds on
     * to, which a leak grows; its RSS also grows while the JVM sizes its heap up to its steady state.
     */
    private static Map<String, Long> heapAfterGc(ServiceProcesses services, List<String> names)
            throws IOException, InterruptedException {
        Path jcmd = Path.of(System.getProperty("java.home"), "bin", "jcmd");
        Map<String, Long> kb = new TreeMap<>();
        for (String name : names) {
            String pid = String.valueOf(services.pid(name));
            new ProcessBuilder(jcmd.toString(), pid, "GC.run").redirectErrorStream(true).start().waitFor();
            Process info = new ProcessBuilder(jcmd.toString(), pid, "GC.heap_info").redirectErrorStream(true).start();
            String out = new String(info.getInputStream().readAllBytes());
            info.waitFor();
            java.util.regex.Matcher used = java.util.regex.Pattern.compile("heap .*?used (\\d+)K").matcher(out);
            kb.put(name, used.find() ? Long.parseLong(used.group(1)) : -1);
        }
        return kb;
    }

    /** Generations each replica has finished so far (its {@code expo_inference_requests_total}). */
    private static Map<String, Long> served(List<String> replicas, List<Integer> ports)
            throws IOException, InterruptedException {
        Map<String, Long> served = new TreeMap<>();
        try (java.net.http.HttpClient http = java.net.http.HttpClient.newHttpClient()) {
            for (int i = 0; i < replicas.size(); i++) {
                String metrics = http.send(java.net.http.HttpRequest.newBuilder(java.net.URI.create(
                        "http://127.0.0.1:" + ports.get(i) + "/q/metrics")).build(),
                        java.net.http.HttpResponse.BodyHandlers.ofString()).body();
                served.put(replicas.get(i), (long) metrics.lines()
                        .filter(l -> l.startsWith("expo_inference_requests_total{"))
                        .mapToDouble(l -> Double.parseDouble(l.substring(l.lastIndexOf(' ') + 1))).sum());
            }
        }
        return served;
    }

    /** Resident memory (VmRSS, KiB) of each process, from /proc. */
    private static Map<String, Long> rss(ServiceProcesses services, List<String> names) throws IOException {
        Map<String, Long> kb = new TreeMap<>();
        for (String name : names) {
            for (String line : Files.readAllLines(Path.of("/proc", String.valueOf(services.pid(name)), "status"))) {
                if (line.startsWith("VmRSS:")) {
                    kb.put(name, Long.parseLong(line.replaceAll("\\D+", "")));
                }
            }
        }
        return kb;
    }

    private static void report(Options options, Tally tally, double seconds, Map<String, Long> afterWarmUp,
                               Map<String, List<Long>> samples, Map<String, Long> atEnd) {
        long errors = tally.errors.values().stream().mapToLong(LongAdder::sum).sum();
        System.out.printf(Locale.ROOT, "  %d streams completed, %d errors%s; %.0f tokens/s through the gateway%n",
                tally.streams.sum(), errors, errors == 0 ? "" : " " + tally.errors + " (first: " + tally.firstError
                        + ")", tally.tokens.sum() / seconds);
        System.out.printf(Locale.ROOT, "  time to first token p50 %.1f ms, p99 %.1f ms; inter-token p50 %.1f ms, "
                        + "p99 %.1f ms%n", tally.ttft.getValueAtPercentile(50) / 1000.0,
                tally.ttft.getValueAtPercentile(99) / 1000.0, tally.interToken.getValueAtPercentile(50) / 1000.0,
                tally.interToken.getValueAtPercentile(99) / 1000.0);
        for (String name : samples.keySet()) {
            List<Long> kb = samples.get(name);
            long max = kb.stream().mapToLong(Long::longValue).max().orElse(0);
            System.out.printf(Locale.ROOT, "  RSS %-20s after warm-up %5d MiB, max during the run %5d MiB, at the "
                            + "end %5d MiB (%+.1f%%)%n", name, afterWarmUp.get(name) / 1024, max / 1024,
                    atEnd.get(name) / 1024, 100.0 * (atEnd.get(name) - afterWarmUp.get(name)) / afterWarmUp.get(name));
        }
    }

    /**
     * Pairs of identical greedy streams sent together, one direct to the first replica and one through the gateway,
     * while the load runs (with several replicas the gateway may send its half elsewhere). Admitted to the same decode
     * step, both receive token k from the same step, so the difference of their arrivals is the gateway's added
     * latency for that token; admitted later (the gateway took longer than a step to forward the request), the
     * difference also holds the steps it waited, which its client waits too. Also each path's inter-token gaps.
     */
    private static void perTokenUnderLoad(ManagedChannel direct, ManagedChannel gateway, Options options)
            throws Exception {
        Tally background = new Tally();
        Thread loadThread = Thread.ofPlatform().daemon().start(() -> {
            try {
                load(gateway, options, background, 30);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
        Thread.sleep(5000);
        List<Double> differences = new ArrayList<>();
        Histogram directGaps = new Histogram(3);
        Histogram gatewayGaps = new Histogram(3);
        List<Double> steps = new ArrayList<>();
        int sameStep = 0;
        int compared = 0;
        SplittableRandom random = new SplittableRandom(4242);
        for (int p = 0; p < options.pairs; p++) {
            GenerateRequest request = request(random, options);
            CompletableFuture<long[]> viaDirect = arrivals(direct, request);
            CompletableFuture<long[]> viaGateway = arrivals(gateway, request);
            long[] d = viaDirect.get(120, TimeUnit.SECONDS);
            long[] g = viaGateway.get(120, TimeUnit.SECONDS);
            if (d.length != g.length || d.length < 2) {
                continue;
            }
            compared++;
            double[] diff = new double[d.length];
            for (int i = 0; i < d.length; i++) {
                diff[i] = (g[i] - d[i]) / 1e6;
                differences.add(diff[i]);
                if (i > 0) {
                    directGaps.recordValue((d[i] - d[i - 1]) / 1000);
                    gatewayGaps.recordValue((g[i] - g[i - 1]) / 1000);
                }
            }
            double step = (d[d.length - 1] - d[0]) / 1e6 / (d.length - 1);
            steps.add(step);
            double[] sorted = diff.clone();
            java.util.Arrays.sort(sorted);
            if (Math.abs(sorted[sorted.length / 2]) <= step / 2) {
                sameStep++;
            }
        }
        loadThread.join();
        if (compared == 0) {
            System.out.println("  no pair completed on both paths");
            return;
        }
        double step = steps.stream().mapToDouble(Double::doubleValue).average().orElse(0);
        System.out.printf(Locale.ROOT, "  each token's arrival, gateway minus direct: p50 %.2f ms, p99 %.2f ms (%d "
                        + "pairs; %d of them admitted in the same decode step; the step: %.1f ms)%n",
                signedQuantile(differences, 0.5), signedQuantile(differences, 0.99), compared, sameStep, step);
        System.out.printf(Locale.ROOT, "  inter-token gap on those streams: direct p50 %.2f ms, p99 %.2f ms; gateway "
                        + "p50 %.2f ms, p99 %.2f ms%n", directGaps.getValueAtPercentile(50) / 1000.0,
                directGaps.getValueAtPercentile(99) / 1000.0, gatewayGaps.getValueAtPercentile(50) / 1000.0,
                gatewayGaps.getValueAtPercentile(99) / 1000.0);
    }

    private static double signedQuantile(List<Double> values, double q) {
        return ServingBenchmark.quantile(values.stream().mapToDouble(Double::doubleValue).toArray(), q);
    }

    /** Each token's arrival (System.nanoTime) on one stream. */
    private static CompletableFuture<long[]> arrivals(ManagedChannel channel, GenerateRequest request) {
        CompletableFuture<long[]> result = new CompletableFuture<>();
        List<Long> times = new ArrayList<>();
        InferenceServiceGrpc.newStub(channel).withDeadlineAfter(120, TimeUnit.SECONDS).generate(request,
                new StreamObserver<>() {
                    @Override
                    public void onNext(GenerateResponse response) {
                        long now = System.nanoTime();
                        for (int i = 0; i < response.getTokenIdsCount(); i++) {
                            times.add(now);
                        }
                    }

                    @Override
                    public void onError(Throwable t) {
                        result.completeExceptionally(t);
                    }

                    @Override
                    public void onCompleted() {
                        result.complete(times.stream().mapToLong(Long::longValue).toArray());
                    }
                });
        return result;
    }
}

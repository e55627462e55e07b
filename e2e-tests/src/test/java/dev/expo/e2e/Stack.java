package dev.expo.e2e;

import dev.expo.benchmarks.Bearer;

import io.grpc.ManagedChannel;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * The four packaged services started as separate processes on free loopback ports, as bin/expo-stack starts them,
 * with a temporary model store. One stack serves every end-to-end test (see {@link StackExtension}); a test that
 * kills processes starts its own, of the services it needs ({@link #of}: {@code inference-service-2} is a second
 * inference replica behind the same gateway).
 */
public final class Stack implements AutoCloseable {

    private static final HttpClient HTTP = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(10)).build();

    static final List<String> SERVICES = List.of("extrapolation-service", "training-service", "inference-service",
            "gateway");
    /** Extra settings, so a job is slow enough to be cancelled mid-write: small chunks, frequent syncs. */
    static final List<String> EXTRAPOLATION_SETTINGS = List.of("-Dextrapolation.chunk-elements=16384",
            "-Dextrapolation.sync-every-bytes=1048576");

    final Path root = Path.of(System.getProperty("expo.root", "..")).toAbsolutePath().normalize();
    final Path store;
    final Path logs;
    final Map<String, Integer> ports = new LinkedHashMap<>();
    private final Map<String, Process> processes = new LinkedHashMap<>();
    private final ManagedChannel channel;
    /** The gateway writes its first admin key here on its first start, as bin/expo-stack has it do. */
    final Path adminKeyFile;
    private volatile String adminKey;

    Stack() throws IOException, InterruptedException {
        this(SERVICES, "e2e-logs");
    }

    /** A stack of just these services (the gateway last), its logs in {@code target/<logsName>}. */
    static Stack of(String logsName, String... services) throws IOException, InterruptedException {
        return new Stack(List.of(services), logsName);
    }

    private Stack(List<String> services, String logsName) throws IOException, InterruptedException {
        store = Files.createTempDirectory("expo-e2e-store");
        adminKeyFile = Files.createTempDirectory("expo-e2e-run").resolve("api-key");
        logs = Files.createDirectories(root.resolve("e2e-tests/target").resolve(logsName));
        for (String service : services) {
            ports.put(service, freePort());
        }
        for (String service : services) {
            processes.put(service, start(service));
        }
        channel = NettyChannelBuilder.forAddress("127.0.0.1", ports.get("gateway")).usePlaintext()
                .maxInboundMessageSize(64 << 20).intercept(Bearer.of(() -> adminKey)).build();
        awaitServing(Duration.ofSeconds(120));
        adminKey = Files.readString(adminKeyFile).strip();
    }

    /** The admin key the gateway made on its first start. */
    String adminKey() {
        return adminKey;
    }

    /** Every inference replica's address, as the gateway's round robin takes them. */
    private String addressesOf(String app) {
        List<String> addresses = new ArrayList<>();
        ports.forEach((service, port) -> {
            if (appOf(service).equals(app)) {
                addresses.add("127.0.0.1:" + port);
            }
        });
        return addresses.isEmpty() ? "127.0.0.1:1" : String.join(",", addresses);
    }

    /** inference-service-2 runs the inference-service jar. */
    static String appOf(String service) {
        return service.replaceFirst("^(inference-service)-\\d+$", "$1");
    }

    private Process start(String service) throws IOException {
        String app = appOf(service);
        Path jar = root.resolve(app).resolve("app/target/quarkus-app/quarkus-run.jar");
        if (!Files.exists(jar)) {
            throw new IllegalStateException(jar + " is missing: package the services first (./mvnw verify does)");
        }
        List<String> command = new ArrayList<>(List.of(javaBin(), "--add-modules", "jdk.incubator.vector",
                "--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow",
                "-Dai.djl.offline=true", "-Xmx512m",
                "-Dquarkus.http.port=" + ports.get(service),
                "-Dexpo.model-store=" + store));
        if (service.equals("gateway")) {
            command.addAll(List.of("-Dexpo.auth.bootstrap-key-file=" + adminKeyFile,
                    "-Dexpo.backends.extrapolation=" + addressesOf("extrapolation-service"),
                    "-Dexpo.backends.training=" + addressesOf("training-service"),
                    "-Dexpo.backends.inference=" + addressesOf("inference-service")));
        }
        if (app.equals("extrapolation-service")) {
            command.addAll(EXTRAPOLATION_SETTINGS);
        }
        if (app.equals("inference-service")) {
            command.addAll(List.of("-Dai.djl.pytorch.num_threads=2", "-Dai.djl.pytorch.num_interop_threads=1",
                    "-Djdk.incubator.vector.VECTOR_ACCESS_OOB_CHECK=0"));   // as bin/lib/env.sh runs it
        }
        command.addAll(List.of("-jar", jar.toString()));
        return new ProcessBuilder(command).redirectErrorStream(true)
                .redirectOutput(logs.resolve(service + ".log").toFile()).start();
    }

    static String javaBin() {
        return Path.of(System.getProperty("java.home"), "bin", "java").toString();
    }

    private void awaitServing(Duration timeout) throws InterruptedException {
        Instant deadline = Instant.now().plus(timeout);
        while (true) {
            for (Map.Entry<String, Process> entry : processes.entrySet()) {
                if (!entry.getValue().isAlive()) {
                    throw new IllegalStateException(entry.getKey() + " exited at start-up; see "
                            + logs.resolve(entry.getKey() + ".log"));
                }
            }
            if (allServing()) {
                return;
            }
            if (Instant.now().isAfter(deadline)) {
                throw new IllegalStateException("the stack did not report SERVING within " + timeout);
            }
            Thread.sleep(250);
        }
    }

    boolean allServing() {
        List<String> services = new ArrayList<>(List.of(""));
        if (ports.containsKey("extrapolation-service")) {
            services.add("expo.v1.ExtrapolationService");
        }
        if (ports.containsKey("training-service")) {
            services.add("expo.v1.TrainingService");
        }
        if (ports.containsKey("inference-service")) {
            services.add("expo.v1.InferenceService");
        }
        for (int port : ports.values()) {                  // every process listening (each replica, too)
            try (java.net.Socket socket = new java.net.Socket()) {
                socket.connect(new java.net.InetSocketAddress("127.0.0.1", port), 1000);
            } catch (IOException notYet) {
                return false;
            }
        }
        for (String service : services) {
            try {
                HealthCheckResponse response = HealthGrpc.newBlockingStub(channel).withDeadlineAfter(2,
                        TimeUnit.SECONDS).check(HealthCheckRequest.newBuilder().setService(service).build());
                if (response.getStatus() != HealthCheckResponse.ServingStatus.SERVING) {
                    return false;
                }
            } catch (RuntimeException e) {
                return false;
            }
        }
        return true;
    }

    /** Whether the service's process has exited within the given seconds. */
    boolean awaitExit(String service, long seconds) throws InterruptedException {
        return processes.get(service).waitFor(seconds, TimeUnit.SECONDS);
    }

    /** Starts an exited service again (its earlier log kept), and waits for the stack to serve. */
    void startAgain(String service) throws IOException, InterruptedException {
        Files.move(logs.resolve(service + ".log"), logs.resolve(service + "-stopped.log"),
                java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        processes.put(service, start(service));
        awaitServing(Duration.ofSeconds(120));
    }

    long pid(String service) {
        return processes.get(service).pid();
    }

    /** kill -9 of one service (SIGKILL: no shutdown hook runs); returns once the process is gone. */
    void kill(String service) throws InterruptedException {
        Process process = processes.get(service);
        process.destroyForcibly();
        if (!process.waitFor(20, TimeUnit.SECONDS)) {
            throw new IllegalStateException(service + " survived SIGKILL");
        }
    }

    /** kill -9 of one service, then the same service started again, serving. */
    void killAndRestart(String service) throws IOException, InterruptedException {
        kill(service);
        Files.move(logs.resolve(service + ".log"), logs.resolve(service + "-killed.log"),
                java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        processes.put(service, start(service));
        awaitServing(Duration.ofSeconds(120));
    }

    ManagedChannel gateway() {
        return channel;
    }

    String gatewayAddress() {
        return "127.0.0.1:" + ports.get("gateway");
    }

    /** The service's own port, for checks behind the gateway's back (metrics). */
    int port(String service) {
        return ports.get(service);
    }

    /**
     * The service's Prometheus page. Over HTTP/1.1 with timeouts: the JDK client's default first tries an h2c upgrade,
     * and one such request in a few hundred hung for good against Vert.x in a stress run (the service itself kept
     * answering).
     */
    String metrics(String service) throws IOException, InterruptedException {
        HttpResponse<String> response = HTTP.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:"
                + port(service) + "/q/metrics")).timeout(Duration.ofSeconds(30)).build(),
                HttpResponse.BodyHandlers.ofString());
        if (response.statusCode() != 200) {
            throw new IOException(service + " /q/metrics answered " + response.statusCode());
        }
        return response.body();
    }

    Path fixture(String relative) {
        return root.resolve("testdata/fixtures").resolve(relative);
    }

    /** Copies a fixture model folder (its files, not its sub-folders) into the store, once. */
    synchronized void addModel(String name, String fixture) {
        Path from = fixture(fixture);
        Path to = store.resolve(name);
        if (Files.exists(to)) {
            return;
        }
        try {
            Files.createDirectories(to);
            try (var files = Files.list(from)) {
                for (Path file : files.filter(Files::isRegularFile).toList()) {
                    Files.copy(file, to.resolve(file.getFileName()));
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static int freePort() throws IOException {
        try (ServerSocket socket = new ServerSocket(0)) {
            socket.setReuseAddress(true);
            return socket.getLocalPort();
        }
    }

    @Override
    public void close() {
        channel.shutdownNow();
        processes.values().forEach(Process::destroy);
        for (Process process : processes.values()) {
            try {
                if (!process.waitFor(20, TimeUnit.SECONDS)) {
                    process.destroyForcibly();
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        dev.expo.common.store.ModelStore.deleteTree(store);
        dev.expo.common.store.ModelStore.deleteTree(adminKeyFile.getParent());
    }
}

package dev.expo.benchmarks;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Packaged services started as processes on loopback, with the flags bin/expo-stack gives them
 * ({@code expo.bench.service-flags}), stopped (gracefully, then forcibly) on close.
 */
final class ServiceProcesses implements AutoCloseable {

    private final Path root;
    private final Path logs;
    private final Map<String, Process> processes = new LinkedHashMap<>();

    ServiceProcesses(Path root, Path logs) throws IOException {
        this.root = root;
        this.logs = Files.createDirectories(logs);
    }

    private Path adminKeyFile;

    /**
     * The gateway's admin key, once it has started; null before. The gateway writes it when its store has no key yet,
     * next to the store's keys (so a store kept between runs keeps its key too).
     */
    String adminKey() {
        try {
            return adminKeyFile != null && Files.exists(adminKeyFile) ? Files.readString(adminKeyFile).strip() : null;
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    /** Starts a service on {@code port}; its inference client (a gateway's) points at {@code inferencePort}. */
    void start(String service, int port, Path store, int inferencePort, String extraFlags) throws IOException {
        start(service, service, port, store, List.of("127.0.0.1:" + inferencePort), extraFlags);
    }

    /**
     * Starts {@code app}'s jar as the process {@code name} (inference-service-2: a second replica) on {@code port};
     * a gateway balances over {@code inferenceReplicas}.
     */
    void start(String name, String app, int port, Path store, List<String> inferenceReplicas, String extraFlags)
            throws IOException {
        Path jar = root.resolve(app).resolve("app/target/quarkus-app/quarkus-run.jar");
        if (!Files.exists(jar)) {
            throw new IllegalStateException(jar + " is missing: build it (bin/expo-bench does)");
        }
        List<String> command = new ArrayList<>();
        command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        command.addAll(flags(System.getProperty("expo.bench.service-flags", "--add-modules jdk.incubator.vector "
                + "--enable-native-access=ALL-UNNAMED -Dai.djl.offline=true")));
        command.addAll(flags(extraFlags));
        command.addAll(List.of("-Dquarkus.http.port=" + port, "-Dexpo.model-store=" + store));
        if (app.equals("gateway")) {
            adminKeyFile = store.resolve(".gateway").resolve("bench-admin.key");
            command.addAll(List.of("-Dexpo.backends.inference=" + String.join(",", inferenceReplicas),
                    "-Dexpo.auth.bootstrap-key-file=" + adminKeyFile));
        }
        command.addAll(List.of("-jar", jar.toString()));
        Process process = new ProcessBuilder(command).redirectErrorStream(true)
                .redirectOutput(logs.resolve(name + ".log").toFile()).start();
        processes.put(name, process);
    }

    long pid(String name) {
        return processes.get(name).pid();
    }

    /** A benchmark body that runs services. */
    interface Body {
        void run() throws Exception;
    }

    /** Runs a benchmark's body; a service that exits on its own ends it with one line and exit code 1. */
    static void runReportingExits(Body body) throws Exception {
        try {
            body.run();
        } catch (Exited e) {
            System.err.println("expo-bench: " + e.getMessage());
            System.exit(1);
        }
    }

    /** A service that stopped on its own: a one-line account for the person running the benchmark. */
    static final class Exited extends RuntimeException {
        Exited(String message) {
            super(message);
        }
    }

    void checkAlive() {
        processes.forEach((service, process) -> {
            if (!process.isAlive()) {
                Path log = logs.resolve(service + ".log");
                throw new Exited(service + " exited" + cause(log) + " (its log: " + log + ")");
            }
        });
    }

    /** ": " and the innermost cause a failed start logged (Quarkus wraps it several times), or nothing. */
    private static String cause(Path log) {
        try {
            List<String> causes = Files.readAllLines(log).stream().filter(l -> l.startsWith("Caused by: ")).toList();
            if (causes.isEmpty()) {
                return "";
            }
            String innermost = causes.getLast().substring("Caused by: ".length());
            int colon = innermost.indexOf(": ");
            return ": " + (colon < 0 ? innermost : innermost.substring(colon + 2));
        } catch (IOException | RuntimeException e) {
            return "";
        }
    }

    private static List<String> flags(String flags) {
        return Arrays.stream(flags.trim().split("\\s+")).filter(f -> !f.isEmpty()).toList();
    }

    @Override
    public void close() throws InterruptedException {
        for (Process process : processes.values()) {
            process.destroy();
        }
        for (Process process : processes.values()) {
            if (!process.waitFor(20, TimeUnit.SECONDS)) {
                process.destroyForcibly();
            }
        }
    }
}

package dev.expo.e2e;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** Runs bin/expo as a user would, against the test stack's gateway. */
final class Cli {

    record Result(int exitCode, String stdout, String stderr) {
    }

    private Cli() {
    }

    static Result run(Stack stack, String... args) throws IOException, InterruptedException {
        return runWithKey(stack, stack.adminKey(), args);
    }

    /** As {@link #run}, sending {@code key} (none when null). */
    static Result runWithKey(Stack stack, String key, String... args) throws IOException, InterruptedException {
        List<String> command = new ArrayList<>();
        command.add(stack.root.resolve("bin/expo").toString());
        command.addAll(List.of(args));
        ProcessBuilder builder = new ProcessBuilder(command);
        builder.environment().put("EXPO_GATEWAY", stack.gatewayAddress());
        builder.environment().remove("EXPO_API_KEY");
        builder.environment().put("EXPO_API_KEY_FILE", "/dev/null/none");
        if (key != null) {
            builder.environment().put("EXPO_API_KEY", key);
        }
        builder.environment().put("EXPO_JAVA_HOME", Path.of(System.getProperty("java.home")).toString());
        Process process = builder.start();
        var stdout = process.getInputStream().readAllBytes();
        var stderr = process.getErrorStream().readAllBytes();
        if (!process.waitFor(120, TimeUnit.SECONDS)) {
            process.destroyForcibly();
            throw new IllegalStateException("bin/expo " + String.join(" ", args) + " did not finish");
        }
        return new Result(process.exitValue(), new String(stdout, StandardCharsets.UTF_8),
                new String(stderr, StandardCharsets.UTF_8));
    }
}

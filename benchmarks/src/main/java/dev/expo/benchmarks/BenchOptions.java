package dev.expo.benchmarks;

import picocli.CommandLine;

/** A benchmark's options, parsed by picocli: its usage on --help, one line and exit code 2 for a bad option. */
final class BenchOptions {

    private BenchOptions() {
    }

    static <T> T parse(T options, String[] args) {
        CommandLine line = new CommandLine(options);
        try {
            line.parseArgs(args);
        } catch (CommandLine.ParameterException e) {
            System.err.println("expo-bench: " + e.getMessage());
            line.usage(System.err);
            System.exit(2);
        }
        if (line.isUsageHelpRequested()) {
            line.usage(System.out);
            System.exit(0);
        }
        return options;
    }
}

package dev.expo.cli;

import picocli.CommandLine;

/** Entry point of the {@code expo} command. */
public final class Main {

    private Main() {
    }

    public static void main(String[] args) {
        System.exit(run(args));
    }

    /** Runs the command line and returns its exit code (tests call this). */
    public static int run(String... args) {
        CommandLine commandLine = new CommandLine(new ExpoCommand())
                .setExecutionExceptionHandler(new CliErrors())
                .setParameterExceptionHandler(CliErrors::onBadUsage);
        return commandLine.execute(args);
    }
}

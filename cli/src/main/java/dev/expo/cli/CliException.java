package dev.expo.cli;

/** A failure the CLI reports as one line with its exit code (1: the request failed, 2: bad usage). */
public class CliException extends RuntimeException {

    private final int exitCode;

    public CliException(String message, int exitCode) {
        super(message);
        this.exitCode = exitCode;
    }

    public int exitCode() {
        return exitCode;
    }
}

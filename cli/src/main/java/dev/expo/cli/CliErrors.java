package dev.expo.cli;

import dev.expo.common.ExpoException;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import picocli.CommandLine;

import java.io.PrintWriter;

/**
 * Turns every failure into one line on stderr and an exit code: 1 when a request failed (with its gRPC status),
 * 2 for bad usage. Stack traces only with EXPO_DEBUG=1.
 */
public class CliErrors implements CommandLine.IExecutionExceptionHandler {

    @Override
    public int handleExecutionException(Exception failure, CommandLine commandLine,
                                        CommandLine.ParseResult parseResult) {
        PrintWriter err = commandLine.getErr();
        if (System.getenv("EXPO_DEBUG") != null) {
            failure.printStackTrace(err);
        }
        err.println("expo: " + message(failure));
        err.flush();
        return failure instanceof CliException e ? e.exitCode()
                : failure instanceof ExpoException e && e.kind() == ExpoException.Kind.INVALID_ARGUMENT ? 2 : 1;
    }

    static String message(Throwable failure) {
        if (failure instanceof StatusRuntimeException e) {
            Status status = e.getStatus();
            if (status.getCode() == Status.Code.UNAVAILABLE && (status.getDescription() == null
                    || !status.getDescription().contains("not reachable"))) {
                return "cannot reach the gateway at " + GatewayOptions.address()
                        + " (is the stack running? try bin/expo-stack up" + (GatewayOptions.usesTls()
                        || String.valueOf(status.getDescription()).contains("refused")
                        || String.valueOf(status.getCause()).contains("refused") ? ""
                        : "; if the gateway has a TLS certificate, set EXPO_TLS_CA=ITS_CA.pem or EXPO_TLS=1") + ")";
            }
            if (status.getCode() == Status.Code.DEADLINE_EXCEEDED) {
                return "DEADLINE_EXCEEDED: the call took longer than its --timeout";
            }
            return status.getCode() + ": " + (status.getDescription() == null ? "(no message)"
                    : status.getDescription());
        }
        if (failure instanceof ExpoException e) {
            return e.kind() + ": " + e.getMessage();
        }
        return failure.getMessage() == null ? failure.getClass().getSimpleName() : failure.getMessage();
    }

    /** Bad flags: the reason and a pointer to --help, not the whole usage text. */
    static int onBadUsage(CommandLine.ParameterException failure, String[] args) {
        CommandLine command = failure.getCommandLine();
        PrintWriter err = command.getErr();
        err.println("expo: " + failure.getMessage());
        err.println("Try '" + command.getCommandSpec().qualifiedName() + " --help' for usage.");
        err.flush();
        return 2;
    }
}

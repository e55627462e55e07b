package dev.expo.cli;

import io.grpc.ManagedChannel;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;

import java.util.concurrent.TimeUnit;

/**
 * Where the gateway is: {@code --gateway HOST:PORT} (accepted before or after any subcommand), else
 * {@code $EXPO_GATEWAY}, else the stack's default address.
 */
public final class GatewayOptions {

    public static final String DEFAULT_GATEWAY = "127.0.0.1:50051";

    private static volatile String selected;

    private GatewayOptions() {
    }

    static void select(String address) {
        selected = address;
    }

    public static String address() {
        if (selected != null && !selected.isBlank()) {
            return selected;
        }
        String fromEnv = System.getenv("EXPO_GATEWAY");
        return fromEnv == null || fromEnv.isBlank() ? DEFAULT_GATEWAY : fromEnv;
    }

    /** A plaintext channel to the gateway; callers close it with {@link #close}. */
    public static ManagedChannel open() {
        String address = address();
        int colon = address.lastIndexOf(':');
        int port = -1;
        if (colon > 0) {
            try {
                port = Integer.parseInt(address.substring(colon + 1));
            } catch (NumberFormatException e) {
                port = -1;
            }
        }
        if (port <= 0 || port > 65535) {
            throw new CliException("the gateway address must be HOST:PORT, not \"" + address + "\"", 2);
        }
        return NettyChannelBuilder.forAddress(address.substring(0, colon), port)
                .usePlaintext()
                .maxInboundMessageSize(64 << 20)
                .build();
    }

    public static void close(ManagedChannel channel) {
        channel.shutdownNow();
        try {
            channel.awaitTermination(2, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}

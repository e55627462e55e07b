package dev.expo.cli;

import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.netty.shaded.io.grpc.netty.GrpcSslContexts;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.MetadataUtils;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.expo.common.HostPort;

import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import java.util.concurrent.TimeUnit;

/**
 * Where the gateway is: {@code --gateway HOST:PORT} (accepted before or after any subcommand), else
 * {@code $EXPO_GATEWAY}, else the stack's default address. The API key every call carries: {@code $EXPO_API_KEY},
 * else the first line of {@code $EXPO_API_KEY_FILE} (bin/expo points it at the local stack's admin key). TLS: with
 * {@code $EXPO_TLS_CA} (a PEM file of the certificates to trust) or {@code EXPO_TLS=1} (the system's).
 */
public final class GatewayOptions {

    public static final String DEFAULT_GATEWAY = "127.0.0.1:50051";

    private static volatile String selected;

    /**
     * The gRPC service config the CLI uses and docs/api.md recommends: calls that are safe to repeat (reads, Generate
     * before its first token, loads) are retried on UNAVAILABLE with backoff, so a replica restarting or a gateway
     * roll is ridden out; calls that create or change things are not.
     */
    static final Map<String, ?> SERVICE_CONFIG = serviceConfig();

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

    @SuppressWarnings("unchecked")
    private static Map<String, ?> serviceConfig() {
        try (InputStream in = GatewayOptions.class.getResourceAsStream("service-config.json")) {
            return (Map<String, ?>) withDoubles(new ObjectMapper().readValue(in, Map.class));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** gRPC reads a service config's numbers as doubles, as its own JSON parser makes them. */
    private static Object withDoubles(Object json) {
        if (json instanceof Map<?, ?> map) {
            Map<String, Object> copy = new LinkedHashMap<>();
            map.forEach((k, v) -> copy.put((String) k, withDoubles(v)));
            return copy;
        }
        if (json instanceof List<?> list) {
            return list.stream().map(GatewayOptions::withDoubles).toList();
        }
        return json instanceof Number n ? n.doubleValue() : json;
    }

    /** Whether the channel is TLS ({@code EXPO_TLS_CA} or {@code EXPO_TLS=1} set). */
    static boolean usesTls() {
        String ca = System.getenv("EXPO_TLS_CA");
        return (ca != null && !ca.isBlank()) || "1".equals(System.getenv("EXPO_TLS"));
    }

    /** A channel to the gateway (plain text, or TLS as {@link #usesTls} says); callers close it with {@link #close}. */
    public static ManagedChannel open() {
        String address = address();
        HostPort gateway;
        try {
            gateway = HostPort.parse(address);
        } catch (IllegalArgumentException e) {
            throw new CliException("the gateway address must be HOST:PORT, not \"" + address + "\"", 2);
        }
        NettyChannelBuilder builder = NettyChannelBuilder.forAddress(gateway.host(), gateway.port())
                .maxInboundMessageSize(64 << 20)
                .defaultServiceConfig(SERVICE_CONFIG).enableRetry();
        String ca = System.getenv("EXPO_TLS_CA");
        if (ca != null && !ca.isBlank()) {
            try {
                builder.sslContext(GrpcSslContexts.forClient().trustManager(new File(ca)).build());
            } catch (IOException | IllegalArgumentException e) {
                throw new CliException("EXPO_TLS_CA=" + ca + " is not a readable PEM certificate file: "
                        + e.getMessage(), 2);
            }
        } else if (!"1".equals(System.getenv("EXPO_TLS"))) {
            builder.usePlaintext();
        }
        String key = apiKey();
        if (key != null) {
            Metadata headers = new Metadata();
            headers.put(Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER), "Bearer " + key);
            builder.intercept(MetadataUtils.newAttachHeadersInterceptor(headers));
        }
        return builder.build();
    }

    /** The key to send, or null (the gateway then answers UNAUTHENTICATED, naming what to do). */
    static String apiKey() {
        String key = System.getenv("EXPO_API_KEY");
        if (key != null && !key.isBlank()) {
            return key.strip();
        }
        String file = System.getenv("EXPO_API_KEY_FILE");
        if (file != null && !file.isBlank() && Files.isReadable(Path.of(file))) {
            try {
                List<String> lines = Files.readAllLines(Path.of(file));
                return lines.isEmpty() || lines.getFirst().isBlank() ? null : lines.getFirst().strip();
            } catch (IOException e) {
                throw new CliException("cannot read the API key in " + file + ": " + e.getMessage(), 1);
            }
        }
        return null;
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

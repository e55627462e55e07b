package dev.expo.benchmarks;

import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.ForwardingClientCall;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;

import java.util.function.Supplier;

/** Sends {@code authorization: Bearer KEY} on every call, as bin/expo and OpenAI clients do (none while null). */
public final class Bearer implements ClientInterceptor {

    public static final Metadata.Key<String> AUTHORIZATION = Metadata.Key.of("authorization",
            Metadata.ASCII_STRING_MARSHALLER);

    private final Supplier<String> key;

    private Bearer(Supplier<String> key) {
        this.key = key;
    }

    public static Bearer of(Supplier<String> key) {
        return new Bearer(key);
    }

    public static Bearer of(String key) {
        return new Bearer(() -> key);
    }

    @Override
    public <Q, R> ClientCall<Q, R> interceptCall(MethodDescriptor<Q, R> method, CallOptions options, Channel next) {
        return new ForwardingClientCall.SimpleForwardingClientCall<>(next.newCall(method, options)) {
            @Override
            public void start(Listener<R> listener, Metadata headers) {
                String k = key.get();
                if (k != null) {
                    headers.put(AUTHORIZATION, "Bearer " + k);
                }
                super.start(listener, headers);
            }
        };
    }
}

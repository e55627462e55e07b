package dev.expo.gateway.routing;

import dev.expo.service.ClientDisconnects;
import dev.expo.service.GrpcTimeout;
import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.Deadline;
import io.grpc.Drainable;
import io.grpc.KnownLength;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerMethodDefinition;
import io.grpc.ServerServiceDefinition;
import io.grpc.ServiceDescriptor;
import io.grpc.Status;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.util.OptionalLong;
import java.util.Set;
import java.util.concurrent.TimeUnit;

/**
 * Serves a public service by forwarding every call, of any kind (unary or streaming), to one backend, as raw bytes:
 * messages are neither parsed nor re-encoded. The served definition keeps the service's proto schema, so server
 * reflection on the gateway lists it as if it were implemented here.
 *
 * <p>What travels with a call: the client's metadata (minus transport headers and its credentials), its deadline
 * (read from {@code grpc-timeout}), flow control in both directions, and cancellation: a client that cancels or
 * disconnects cancels the backend call. The backend's status comes back unchanged, except that an unreachable
 * backend is reported as UNAVAILABLE naming it.
 */
public final class ForwardingService {

    static final Metadata.Key<String> GRPC_TIMEOUT = Metadata.Key.of("grpc-timeout", Metadata.ASCII_STRING_MARSHALLER);
    private static final Set<String> NOT_FORWARDED = Set.of("content-type", "te", "user-agent", "host",
            "authorization", "accept-encoding", "content-length", "grpc-accept-encoding", "grpc-encoding",
            "grpc-timeout");
    private static final MethodDescriptor.Marshaller<byte[]> BYTES = new ByteMarshaller();

    private ForwardingService() {
    }

    /** A definition serving every method of {@code service} by forwarding it to {@code backend}. */
    public static ServerServiceDefinition forward(ServiceDescriptor service, Backend backend) {
        ServiceDescriptor.Builder descriptor = ServiceDescriptor.newBuilder(service.getName())
                .setSchemaDescriptor(service.getSchemaDescriptor());
        java.util.List<ServerMethodDefinition<byte[], byte[]>> methods = new java.util.ArrayList<>();
        for (MethodDescriptor<?, ?> method : service.getMethods()) {
            MethodDescriptor<byte[], byte[]> raw = method.toBuilder(BYTES, BYTES).build();
            descriptor.addMethod(raw);
            methods.add(ServerMethodDefinition.create(raw, new ForwardingHandler(raw, backend)));
        }
        ServerServiceDefinition.Builder definition = ServerServiceDefinition.builder(descriptor.build());
        methods.forEach(definition::addMethod);
        return definition.build();
    }

    /** A named backend and the channel to it. */
    public record Backend(String name, String address, Channel channel) {
    }

    private record ForwardingHandler(MethodDescriptor<byte[], byte[]> method, Backend backend)
            implements ServerCallHandler<byte[], byte[]> {

        @Override
        public ServerCall.Listener<byte[]> startCall(ServerCall<byte[], byte[]> serverCall, Metadata headers) {
            // The backend's callbacks only hand bytes on, so they run on its transport thread: no hop through an
            // executor per streamed message (a wake-up each, which costs most when the cores are busy generating).
            CallOptions options = CallOptions.DEFAULT.withExecutor(Runnable::run);
            Deadline deadline = deadlineOf(headers);
            if (deadline != null) {
                options = options.withDeadline(deadline);
            }
            CallProxy proxy = new CallProxy(serverCall, method, options, forwardedHeaders(headers), backend);
            // A client whose connection just closes (no RST_STREAM) never reaches onCancel below on Vert.x's gRPC
            // server; its stream's close does (after a normal end it is a no-op).
            ClientDisconnects.onClose(() -> proxy.clientLeft("the gateway's client went away"));
            serverCall.request(1);
            return proxy.serverListener;
        }
    }

    /**
     * Wires a client-facing server call to a backend client call, message by message. The backend call starts with
     * the request message (every expo.v1 RPC takes one), so the replica policy can see the model it names.
     */
    private static final class CallProxy {
        private final ServerCall<byte[], byte[]> serverCall;
        private final MethodDescriptor<byte[], byte[]> method;
        private final CallOptions options;
        private final Metadata headers;
        private final Backend backend;
        /**
         * Where writes to the client run: on its call's event loop, and only while its stream is open (a write that
         * meets a stream the client just reset would fail the whole connection: see ClientDisconnects).
         */
        private final java.util.concurrent.Executor toClient = ClientDisconnects.writesWhileOpen();
        /** Set once, under this proxy's lock, when the request arrives; null before. */
        private volatile ClientCall<byte[], byte[]> clientCall;
        final ServerCall.Listener<byte[]> serverListener = new ServerCall.Listener<>() {
            @Override
            public void onMessage(byte[] message) {
                ClientCall<byte[], byte[]> call = clientCall;
                if (call == null && (call = startBackendCall(message)) == null) {
                    return;                                  // the client left before it sent its request
                }
                call.sendMessage(message);
                // Asking for more at once lets the server transport deliver the half-close.
                serverCall.request(1);
            }

            @Override
            public void onHalfClose() {
                ClientCall<byte[], byte[]> call = clientCall;
                if (call == null) {
                    call = startBackendCall(null);           // no request at all: the backend says what is wrong
                }
                if (call != null) {
                    call.halfClose();
                }
            }

            @Override
            public void onCancel() {
                clientLeft("the gateway's client cancelled the call");
            }

            @Override
            public void onReady() {
                // The client can take more: pull the next response from the backend if we held back.
                synchronized (CallProxy.this) {
                    if (needToRequestFromBackend && clientCall != null) {
                        needToRequestFromBackend = false;
                        clientCall.request(1);
                    }
                }
            }
        };
        final ClientCall.Listener<byte[]> clientListener = new ClientCall.Listener<>() {
            @Override
            public void onHeaders(Metadata headers) {
                toClient.execute(() -> {
                    if (!clientGone()) {
                        serverCall.sendHeaders(forwardedHeaders(headers));
                    }
                });
            }

            @Override
            public void onMessage(byte[] message) {
                toClient.execute(() -> {
                    if (clientGone()) {
                        return;
                    }
                    serverCall.sendMessage(message);
                    synchronized (CallProxy.this) {
                        if (serverCall.isReady()) {
                            clientCall.request(1);
                        } else {
                            needToRequestFromBackend = true;
                        }
                    }
                });
            }

            @Override
            public void onClose(Status status, Metadata trailers) {
                toClient.execute(() -> {
                    if (clientGone()) {
                        return;
                    }
                    try {
                        serverCall.close(mapBackendStatus(status, backend), trailers);
                    } catch (IllegalStateException alreadyClosed) {
                        // The client went away first; nothing to tell it.
                    }
                });
            }

        };
        private boolean needToRequestFromBackend;
        /**
         * Once the client has gone, nothing more may be written to its call: the HTTP/2 stream is reset, and a
         * write (even the trailers) would make the server transport fail the whole connection.
         */
        private volatile boolean clientCancelled;

        private boolean clientGone() {
            return clientCancelled || serverCall.isCancelled();
        }

        /** The client is gone: nothing more goes to it, and the backend call is cancelled (if it is still going). */
        void clientLeft(String why) {
            ClientCall<byte[], byte[]> call;
            synchronized (this) {
                clientCancelled = true;
                call = clientCall;
            }
            if (call != null) {
                call.cancel(why, null);
            }
        }

        /** The backend call, for the request (its model, if it names one, goes to the replica policy). */
        private ClientCall<byte[], byte[]> startBackendCall(byte[] request) {
            CallOptions forCall = options;
            if (request != null && RequestModel.namesModel(method.getFullMethodName())) {
                String model = RequestModel.of(request);
                if (model != null) {
                    forCall = forCall.withOption(ReplicaLoadBalancer.MODEL, model);
                }
            }
            ClientCall<byte[], byte[]> call = backend.channel().newCall(method, forCall);
            synchronized (this) {
                if (clientCancelled) {
                    return null;
                }
                clientCall = call;
                call.start(clientListener, headers);
                call.request(1);
            }
            return call;
        }

        CallProxy(ServerCall<byte[], byte[]> serverCall, MethodDescriptor<byte[], byte[]> method,
                  CallOptions options, Metadata headers, Backend backend) {
            this.serverCall = serverCall;
            this.method = method;
            this.options = options;
            this.headers = headers;
            this.backend = backend;
        }
    }

    /** A backend's verdict stands; only "could not reach it" is reworded so the caller knows which one. */
    public static Status mapBackendStatus(Status status, Backend backend) {
        if (status.getCode() == Status.Code.UNAVAILABLE) {
            return Status.UNAVAILABLE.withDescription(backend.name() + " is not reachable at " + backend.address()
                    + (status.getDescription() == null ? "" : " (" + status.getDescription() + ")")).withCause(
                    status.getCause());
        }
        return status;
    }

    static Metadata forwardedHeaders(Metadata incoming) {
        Metadata forwarded = new Metadata();
        for (String key : incoming.keys()) {
            if (key.startsWith(":") || NOT_FORWARDED.contains(key)) {
                continue;
            }
            if (key.endsWith(Metadata.BINARY_HEADER_SUFFIX)) {
                Metadata.Key<byte[]> binaryKey = Metadata.Key.of(key, Metadata.BINARY_BYTE_MARSHALLER);
                for (byte[] value : incoming.getAll(binaryKey)) {
                    forwarded.put(binaryKey, value);
                }
            } else {
                Metadata.Key<String> textKey = Metadata.Key.of(key, Metadata.ASCII_STRING_MARSHALLER);
                for (String value : incoming.getAll(textKey)) {
                    forwarded.put(textKey, value);
                }
            }
        }
        return forwarded;
    }

    /** The deadline the client set, from the {@code grpc-timeout} header (e.g. "1500m" = 1.5 s); null if none. */
    static Deadline deadlineOf(Metadata headers) {
        OptionalLong timeout = GrpcTimeout.nanos(headers.get(GRPC_TIMEOUT));
        return timeout.isPresent() ? Deadline.after(timeout.getAsLong(), TimeUnit.NANOSECONDS)
                : io.grpc.Context.current().getDeadline();
    }

    private static final class ByteMarshaller implements MethodDescriptor.Marshaller<byte[]> {
        @Override
        public InputStream stream(byte[] value) {
            return new DrainableBytes(value);
        }

        @Override
        public byte[] parse(InputStream stream) {
            try {
                return stream.readAllBytes();
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
    }

    /** The Vert.x server transport encodes messages by draining the marshaller's stream, as grpc-java's do. */
    private static final class DrainableBytes extends ByteArrayInputStream implements Drainable, KnownLength {
        DrainableBytes(byte[] bytes) {
            super(bytes);
        }

        @Override
        public int drainTo(OutputStream target) throws IOException {
            int length = available();
            target.write(buf, pos, length);
            pos = count;
            return length;
        }
    }
}

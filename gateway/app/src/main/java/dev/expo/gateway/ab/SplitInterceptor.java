package dev.expo.gateway.ab;

import com.google.protobuf.InvalidProtocolBufferException;
import dev.expo.api.v1.GenerateRequest;
import dev.expo.api.v1.GenerateResponse;
import dev.expo.api.v1.InferenceServiceGrpc;
import dev.expo.gateway.access.Caller;
import io.grpc.ForwardingServerCall;
import io.grpc.ForwardingServerCallListener;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;

/**
 * Routes a forwarded Generate call whose model is an A/B split to one of its arms: the request (bytes on the way to
 * the inference service) gets the arm's model, adapter and scale, and the response headers say which arm served it
 * ({@code x-expo-split}, {@code x-expo-arm}). The sticky id is the {@code x-expo-user} header when the client sends
 * one, else its key.
 */
public final class SplitInterceptor implements ServerInterceptor {

    public static final Metadata.Key<String> USER = Metadata.Key.of("x-expo-user", Metadata.ASCII_STRING_MARSHALLER);
    public static final Metadata.Key<String> SPLIT = Metadata.Key.of("x-expo-split", Metadata.ASCII_STRING_MARSHALLER);
    public static final Metadata.Key<String> ARM = Metadata.Key.of("x-expo-arm", Metadata.ASCII_STRING_MARSHALLER);

    private final SplitTraffic traffic;

    public SplitInterceptor(SplitTraffic traffic) {
        this.traffic = traffic;
    }

    @Override
    public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers,
                                                       ServerCallHandler<Q, R> next) {
        if (!call.getMethodDescriptor().getFullMethodName().equals(
                InferenceServiceGrpc.getGenerateMethod().getFullMethodName())) {
            return next.startCall(call, headers);
        }
        Caller caller = Caller.current();
        String sticky = SplitTraffic.stickyId(headers.get(USER), caller == null ? null : caller.keyId());
        RoutedCall<Q, R> routedCall = new RoutedCall<>(call);
        ServerCall.Listener<Q> listener = next.startCall(routedCall, headers);
        return new ForwardingServerCallListener.SimpleForwardingServerCallListener<>(listener) {
            private Status refusal;

            @Override
            @SuppressWarnings("unchecked")
            public void onMessage(Q message) {
                if (!(message instanceof byte[] bytes)) {
                    super.onMessage(message);
                    return;
                }
                GenerateRequest request;
                try {
                    request = GenerateRequest.parseFrom(bytes);
                } catch (InvalidProtocolBufferException e) {
                    super.onMessage(message);     // the backend says what is wrong with it
                    return;
                }
                var routed = traffic.route(request.getModel(), sticky);
                if (routed.isEmpty()) {
                    super.onMessage(message);
                    return;
                }
                if (!request.getAdapter().isEmpty() || request.hasAdapterScale()) {
                    routed.get().end(true);
                    refuse(Status.INVALID_ARGUMENT.withDescription("model " + request.getModel() + " is an A/B "
                            + "split: its arms choose the adapter and its scale, so send neither"));
                    return;
                }
                routedCall.routed = routed.get();
                Splits.Arm arm = routed.get().arm();
                GenerateRequest.Builder rewritten = request.toBuilder().setModel(arm.model()).setAdapter(
                        arm.adapter() == null ? "" : arm.adapter());
                if (arm.adapterScale() != null) {
                    rewritten.setAdapterScale(arm.adapterScale());
                }
                super.onMessage((Q) rewritten.build().toByteArray());
            }

            @Override
            public void onHalfClose() {
                if (refusal == null) {
                    super.onHalfClose();
                    return;
                }
                // Closed once the client has sent all (as AccessInterceptor refuses), then the backend call the
                // forwarder opened is cancelled.
                call.close(refusal, new Metadata());
                super.onCancel();
            }

            @Override
            public void onCancel() {
                if (routedCall.routed != null) {
                    routedCall.routed.end(false);
                }
                super.onCancel();
            }

            private void refuse(Status status) {
                refusal = status;
            }
        };
    }

    /** The served call: headers name the arm, tokens are counted, the end is recorded on the arm. */
    private static final class RoutedCall<Q, R> extends ForwardingServerCall.SimpleForwardingServerCall<Q, R> {
        volatile SplitTraffic.Routed routed;

        RoutedCall(ServerCall<Q, R> call) {
            super(call);
        }

        @Override
        public void sendHeaders(Metadata headers) {
            SplitTraffic.Routed r = routed;
            if (r != null) {
                headers.put(SPLIT, r.split());
                headers.put(ARM, r.arm().name());
            }
            super.sendHeaders(headers);
        }

        @Override
        public void sendMessage(R message) {
            SplitTraffic.Routed r = routed;
            if (r != null && message instanceof byte[] bytes) {
                try {
                    r.tokens(GenerateResponse.parseFrom(bytes).getTokenIdsCount());
                } catch (InvalidProtocolBufferException e) {
                    // counted as nothing
                }
            }
            super.sendMessage(message);
        }

        @Override
        public void close(Status status, Metadata trailers) {
            SplitTraffic.Routed r = routed;
            if (r != null) {
                r.end(!status.isOk() && status.getCode() != Status.Code.CANCELLED);
            }
            super.close(status, trailers);
        }
    }
}

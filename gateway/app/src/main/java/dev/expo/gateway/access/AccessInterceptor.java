package dev.expo.gateway.access;

import com.google.protobuf.Any;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.rpc.Code;
import com.google.rpc.RetryInfo;
import dev.expo.api.v1.GenerateResponse;
import dev.expo.api.v1.InferenceServiceGrpc;
import dev.expo.service.ClientDisconnects;
import dev.expo.service.RefusedCall;
import io.grpc.Context;
import io.grpc.Contexts;
import io.grpc.ForwardingServerCall;
import io.grpc.ForwardingServerCallListener;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import io.grpc.protobuf.StatusProto;
import io.quarkus.grpc.GlobalInterceptor;
import jakarta.annotation.Priority;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;

/**
 * Every public gRPC call passes here first: the key, the role its method names in the proto, the key's quota. A
 * refusal ends the call before any backend sees it; an admitted stream holds one of its key's stream slots until it
 * ends however it ends (completed, cancelled, its client gone), and a generation's tokens are charged to its key as
 * they stream.
 */
@ApplicationScoped
@GlobalInterceptor
@Priority(100)
public class AccessInterceptor implements ServerInterceptor {

    static final Metadata.Key<String> AUTHORIZATION = Metadata.Key.of("authorization",
            Metadata.ASCII_STRING_MARSHALLER);
    static final Metadata.Key<String> RETRY_AFTER = Metadata.Key.of("retry-after", Metadata.ASCII_STRING_MARSHALLER);

    @Inject
    AccessControl access;

    @Override
    public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers,
                                                       ServerCallHandler<Q, R> next) {
        MethodDescriptor<Q, R> method = call.getMethodDescriptor();
        if (AccessPolicy.isOpen(method)) {
            return next.startCall(call, headers);
        }
        String name = method.getFullMethodName();
        Caller caller;
        Quotas.Admission admission;
        try {
            Role needed = AccessPolicy.requiredRole(method).orElseThrow(() -> new AccessDenied(
                    AccessDenied.Reason.PERMISSION_DENIED, name + " names no required role, so nobody may call it"));
            caller = access.authorize(headers.get(AUTHORIZATION), needed, name);
            admission = access.admit(caller, !method.getType().serverSendsOneMessage());
        } catch (AccessDenied denied) {
            Status status = denied.reason() == AccessDenied.Reason.UNAUTHENTICATED ? Status.UNAUTHENTICATED
                    : Status.PERMISSION_DENIED;
            return RefusedCall.refuse(call, status.withDescription(denied.getMessage()), new Metadata());
        } catch (Quotas.Exceeded exceeded) {
            return RefusedCall.refuse(call, Status.RESOURCE_EXHAUSTED.withDescription(exceeded.getMessage() + "; retry after "
                    + exceeded.retryAfterSeconds() + " s"), retryTrailers(exceeded));
        }
        boolean generation = name.equals(InferenceServiceGrpc.getGenerateMethod().getFullMethodName());
        ServerCall<Q, R> watched = new ForwardingServerCall.SimpleForwardingServerCall<>(call) {
            @Override
            public void sendMessage(R message) {
                if (generation) {
                    int tokens = generatedTokens(message);
                    admission.charge(tokens);
                    access.metrics().tokens(caller.keyId(), tokens);
                }
                super.sendMessage(message);
            }

            @Override
            public void close(Status status, Metadata trailers) {
                admission.release();
                access.metrics().call(caller.keyId(), "grpc", name, status.getCode().name());
                super.close(status, trailers);
            }
        };
        ClientDisconnects.onClose(admission::release);
        Context context = Context.current().withValue(Caller.CONTEXT, caller);
        ServerCall.Listener<Q> listener = Contexts.interceptCall(context, watched, headers, next);
        return new ForwardingServerCallListener.SimpleForwardingServerCallListener<>(listener) {
            @Override
            public void onCancel() {
                admission.release();
                access.metrics().call(caller.keyId(), "grpc", name, Status.Code.CANCELLED.name());
                super.onCancel();
            }
        };
    }

    /** The gateway forwards generations as bytes; the token count is the one field read from them. */
    private static int generatedTokens(Object message) {
        try {
            if (message instanceof byte[] bytes) {
                return GenerateResponse.parseFrom(bytes).getTokenIdsCount();
            }
            if (message instanceof GenerateResponse response) {
                return response.getTokenIdsCount();
            }
        } catch (InvalidProtocolBufferException e) {
            // Not a response we can read: its backend's own problem; nothing to charge.
        }
        return 0;
    }

    /** retry-after (seconds) for any client, and google.rpc.RetryInfo for those that read status details. */
    static Metadata retryTrailers(Quotas.Exceeded exceeded) {
        com.google.rpc.Status details = com.google.rpc.Status.newBuilder()
                .setCode(Code.RESOURCE_EXHAUSTED_VALUE).setMessage(exceeded.getMessage())
                .addDetails(Any.pack(RetryInfo.newBuilder().setRetryDelay(com.google.protobuf.Duration.newBuilder()
                        .setSeconds(exceeded.retryAfterSeconds())).build()))
                .build();
        Metadata trailers = StatusProto.toStatusRuntimeException(details).getTrailers();
        Metadata out = trailers == null ? new Metadata() : trailers;
        out.put(RETRY_AFTER, Long.toString(exceeded.retryAfterSeconds()));
        return out;
    }
}

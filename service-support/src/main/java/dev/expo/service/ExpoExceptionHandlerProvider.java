package dev.expo.service;

import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.quarkus.grpc.ExceptionHandler;
import io.quarkus.grpc.ExceptionHandlerProvider;
import jakarta.enterprise.context.ApplicationScoped;

/** Routes every failure of every gRPC service in the app through {@link GrpcErrors}. */
@ApplicationScoped
public class ExpoExceptionHandlerProvider implements ExceptionHandlerProvider {

    @Override
    public <ReqT, RespT> ExceptionHandler<ReqT, RespT> createHandler(ServerCall.Listener<ReqT> listener,
                                                                    ServerCall<ReqT, RespT> call, Metadata metadata) {
        return new ExceptionHandler<>(listener, call, metadata) {
            @Override
            protected void handleException(Throwable failure, ServerCall<ReqT, RespT> serverCall, Metadata headers) {
                serverCall.close(GrpcErrors.toStatus(failure), new Metadata());
            }
        };
    }

    @Override
    public Throwable transform(Throwable failure) {
        return GrpcErrors.toStatusException(failure);
    }
}

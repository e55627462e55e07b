package dev.expo.gateway.routing;

import dev.expo.api.v1.InferenceServiceGrpc;
import io.grpc.BindableService;
import io.grpc.ServerServiceDefinition;
import io.quarkus.grpc.GrpcService;
import jakarta.inject.Inject;

/** expo.v1.InferenceService, forwarded to its backend. */
@GrpcService
public class InferenceRoute implements BindableService {

    @Inject
    Backends backends;

    @Override
    public ServerServiceDefinition bindService() {
        return ForwardingService.forward(InferenceServiceGrpc.getServiceDescriptor(),
                backends.of(InferenceServiceGrpc.SERVICE_NAME));
    }
}

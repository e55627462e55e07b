package dev.expo.gateway.routing;

import dev.expo.api.v1.ExtrapolationServiceGrpc;
import io.grpc.BindableService;
import io.grpc.ServerServiceDefinition;
import io.quarkus.grpc.GrpcService;
import jakarta.inject.Inject;

/** expo.v1.ExtrapolationService, forwarded to its backend. */
@GrpcService
public class ExtrapolationRoute implements BindableService {

    @Inject
    Backends backends;

    @Override
    public ServerServiceDefinition bindService() {
        return ForwardingService.forward(ExtrapolationServiceGrpc.getServiceDescriptor(),
                backends.of(ExtrapolationServiceGrpc.SERVICE_NAME));
    }
}

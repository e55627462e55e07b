package dev.expo.gateway.routing;

import dev.expo.api.v1.TrainingServiceGrpc;
import io.grpc.BindableService;
import io.grpc.ServerServiceDefinition;
import io.quarkus.grpc.GrpcService;
import jakarta.inject.Inject;

/** expo.v1.TrainingService, forwarded to its backend. */
@GrpcService
public class TrainingRoute implements BindableService {

    @Inject
    Backends backends;

    @Override
    public ServerServiceDefinition bindService() {
        return ForwardingService.forward(TrainingServiceGrpc.getServiceDescriptor(),
                backends.of(TrainingServiceGrpc.SERVICE_NAME));
    }
}

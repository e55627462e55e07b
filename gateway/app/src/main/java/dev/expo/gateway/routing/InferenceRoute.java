package dev.expo.gateway.routing;

import dev.expo.api.v1.InferenceServiceGrpc;
import dev.expo.gateway.ab.SplitInterceptor;
import dev.expo.gateway.ab.SplitTraffic;
import io.grpc.BindableService;
import io.grpc.ServerInterceptors;
import io.grpc.ServerServiceDefinition;
import io.quarkus.grpc.GrpcService;
import jakarta.inject.Inject;

/** expo.v1.InferenceService, forwarded to its backend (Generate through the A/B splits). */
@GrpcService
public class InferenceRoute implements BindableService {

    @Inject
    Backends backends;

    @Inject
    SplitTraffic splits;

    @Override
    public ServerServiceDefinition bindService() {
        // Generate calls for an A/B split's name are routed to one of its arms on the way.
        return ServerInterceptors.intercept(ForwardingService.forward(InferenceServiceGrpc.getServiceDescriptor(),
                backends.of(InferenceServiceGrpc.SERVICE_NAME)), new SplitInterceptor(splits));
    }
}

package dev.expo.service;

import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import grpc.health.v1.HealthGrpc;
import io.quarkus.grpc.GlobalInterceptor;
import jakarta.annotation.Priority;
import jakarta.enterprise.context.ApplicationScoped;

/**
 * A draining process takes no new calls: from the moment shutdown begins ({@link GracefulDrain}) every new call but
 * the health service's is refused with UNAVAILABLE, which the gateway's retry policy repeats on another replica,
 * while the calls already running finish. First of the interceptors, so a refused call costs nothing else.
 */
@ApplicationScoped
@GlobalInterceptor
@Priority(1000)
public class DrainingInterceptor implements ServerInterceptor {

    private static volatile boolean draining;

    static void drain() {
        draining = true;
    }

    static boolean draining() {
        return draining;
    }

    @Override
    public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers,
                                                       ServerCallHandler<Q, R> next) {
        if (draining && !HealthGrpc.SERVICE_NAME.equals(call.getMethodDescriptor().getServiceName())) {
            return RefusedCall.refuse(call, Status.UNAVAILABLE.withDescription("this process is shutting down and"
                    + " takes no new calls; try again (another replica, or this one once it is back)"), new Metadata());
        }
        return next.startCall(call, headers);
    }
}

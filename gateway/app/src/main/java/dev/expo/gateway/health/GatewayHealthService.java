package dev.expo.gateway.health;

import dev.expo.api.v1.EvaluationServiceGrpc;
import dev.expo.gateway.routing.Backends;
import dev.expo.gateway.routing.ForwardingService;
import io.grpc.Status;
import grpc.health.v1.HealthGrpc;
import grpc.health.v1.HealthOuterClass.HealthCheckRequest;
import grpc.health.v1.HealthOuterClass.HealthCheckResponse;
import grpc.health.v1.HealthOuterClass.HealthCheckResponse.ServingStatus;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import io.quarkus.grpc.GrpcService;
import jakarta.inject.Inject;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

/**
 * The standard {@code grpc.health.v1.Health} service, answered for the whole system: the empty service name is the
 * gateway itself; a public service's name ({@code expo.v1.InferenceService}, ...) is the live health of the backend
 * that serves it, asked at the time of the call. So {@code grpc_health_probe -service=expo.v1.InferenceService}
 * against the gateway tells whether inference works end to end.
 */
@GrpcService
public class GatewayHealthService extends HealthGrpc.HealthImplBase {

    private static final long BACKEND_TIMEOUT_MS = 2000;
    private static final ScheduledExecutorService WATCH_TIMER = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread thread = new Thread(r, "health-watch");
        thread.setDaemon(true);
        return thread;
    });

    @Inject
    Backends backends;

    @Override
    public void check(HealthCheckRequest request, StreamObserver<HealthCheckResponse> observer) {
        String service = request.getService();
        if (!isKnown(service)) {
            observer.onError(Status.NOT_FOUND.withDescription("unknown service \"" + service + "\"; known: \"\", "
                    + String.join(", ", backends.byService().keySet()) + ", " + EvaluationServiceGrpc.SERVICE_NAME)
                    .asRuntimeException());
            return;
        }
        statusOf(service).whenComplete((status, failure) -> {
            observer.onNext(HealthCheckResponse.newBuilder().setStatus(status).build());
            observer.onCompleted();
        });
    }

    @Override
    public void watch(HealthCheckRequest request, StreamObserver<HealthCheckResponse> observer) {
        String service = request.getService();
        ServerCallStreamObserver<HealthCheckResponse> call = (ServerCallStreamObserver<HealthCheckResponse>) observer;
        if (!isKnown(service)) {
            // The protocol says: an unknown service is SERVICE_UNKNOWN, and the stream stays open.
            observer.onNext(HealthCheckResponse.newBuilder().setStatusValue(3 /* SERVICE_UNKNOWN, absent from this copy of the proto */).build());
            return;
        }
        AtomicReference<ServingStatus> last = new AtomicReference<>();
        ScheduledFuture<?> poll = WATCH_TIMER.scheduleWithFixedDelay(() -> statusOf(service).thenAccept(status -> {
            if (!call.isCancelled() && last.getAndSet(status) != status) {
                synchronized (call) {
                    call.onNext(HealthCheckResponse.newBuilder().setStatus(status).build());
                }
            }
        }), 0, 1, TimeUnit.SECONDS);
        call.setOnCancelHandler(() -> poll.cancel(false));
    }

    private boolean isKnown(String service) {
        return service.isEmpty() || service.equals(EvaluationServiceGrpc.SERVICE_NAME)
                || backends.byService().containsKey(service);
    }

    private CompletableFuture<ServingStatus> statusOf(String service) {
        if (service.isEmpty() || service.equals(EvaluationServiceGrpc.SERVICE_NAME)) {
            return CompletableFuture.completedFuture(ServingStatus.SERVING);
        }
        ForwardingService.Backend backend = backends.of(service);
        CompletableFuture<ServingStatus> result = new CompletableFuture<>();
        HealthGrpc.newStub(backend.channel()).withDeadlineAfter(BACKEND_TIMEOUT_MS, TimeUnit.MILLISECONDS)
                .check(HealthCheckRequest.getDefaultInstance(), new StreamObserver<>() {
                    @Override
                    public void onNext(HealthCheckResponse response) {
                        result.complete(response.getStatus());
                    }

                    @Override
                    public void onError(Throwable t) {
                        result.complete(ServingStatus.NOT_SERVING);
                    }

                    @Override
                    public void onCompleted() {
                        result.complete(ServingStatus.NOT_SERVING);
                    }
                });
        return result;
    }
}

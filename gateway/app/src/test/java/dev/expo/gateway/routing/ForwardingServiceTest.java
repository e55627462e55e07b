package dev.expo.gateway.routing;

import dev.expo.api.v1.ExtrapolateEvent;
import dev.expo.api.v1.ExtrapolateRequest;
import dev.expo.api.v1.ExtrapolationServiceGrpc;
import dev.expo.api.v1.GetExtrapolationJobRequest;
import dev.expo.api.v1.ExtrapolationJob;
import io.grpc.Context;
import io.grpc.Deadline;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.grpc.stub.MetadataUtils;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.util.Iterator;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The forwarding layer alone, between an in-process client and an in-process fake backend: messages, metadata,
 * statuses, deadlines and cancellation all cross it. (The end-to-end tests run it on the real transport.)
 */
class ForwardingServiceTest {

    private static final Metadata.Key<String> TRACE = Metadata.Key.of("x-trace-id", Metadata.ASCII_STRING_MARSHALLER);

    private final FakeBackend backend = new FakeBackend();
    private Server backendServer;
    private Server gatewayServer;
    private ManagedChannel backendChannel;
    private ManagedChannel gatewayChannel;

    /** Streams numbered events until cancelled; answers GetJob, or NOT_FOUND for "missing". */
    static final class FakeBackend extends ExtrapolationServiceGrpc.ExtrapolationServiceImplBase {
        final CountDownLatch cancelled = new CountDownLatch(1);
        final AtomicReference<Deadline> deadline = new AtomicReference<>();
        final AtomicReference<String> trace = new AtomicReference<>();
        final AtomicReference<String> authorization = new AtomicReference<>();

        @Override
        public void extrapolate(ExtrapolateRequest request, StreamObserver<ExtrapolateEvent> observer) {
            deadline.set(Context.current().getDeadline());
            ServerCallStreamObserver<ExtrapolateEvent> call = (ServerCallStreamObserver<ExtrapolateEvent>) observer;
            call.setOnCancelHandler(cancelled::countDown);
            Thread.ofPlatform().daemon().start(() -> {
                for (int i = 0; !call.isCancelled() && i < 10_000; i++) {
                    call.onNext(ExtrapolateEvent.newBuilder().setJobId(request.getOutputModel() + "-" + i).build());
                    sleep(5);
                }
            });
        }

        @Override
        public void getJob(GetExtrapolationJobRequest request, StreamObserver<ExtrapolationJob> observer) {
            if (request.getJobId().equals("missing")) {
                observer.onError(Status.NOT_FOUND.withDescription("no job missing").asRuntimeException());
                return;
            }
            observer.onNext(ExtrapolationJob.newBuilder().setJobId(request.getJobId()).build());
            observer.onCompleted();
        }
    }

    @BeforeEach
    void start() throws Exception {
        String backendName = InProcessServerBuilder.generateName();
        ServerInterceptor captureHeaders = new ServerInterceptor() {
            @Override
            public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers,
                                                              ServerCallHandler<Q, R> next) {
                backend.trace.set(headers.get(TRACE));
                backend.authorization.set(headers.get(Metadata.Key.of("authorization",
                        Metadata.ASCII_STRING_MARSHALLER)));
                return next.startCall(call, headers);
            }
        };
        backendServer = InProcessServerBuilder.forName(backendName)
                .addService(ServerInterceptors.intercept(backend, captureHeaders)).build().start();
        backendChannel = InProcessChannelBuilder.forName(backendName).build();
        String gatewayName = InProcessServerBuilder.generateName();
        gatewayServer = InProcessServerBuilder.forName(gatewayName)
                .addService(ForwardingService.forward(ExtrapolationServiceGrpc.getServiceDescriptor(),
                        new ForwardingService.Backend("extrapolation-service", "in-process", backendChannel)))
                .build().start();
        gatewayChannel = InProcessChannelBuilder.forName(gatewayName).build();
    }

    @AfterEach
    void stop() {
        gatewayChannel.shutdownNow();
        backendChannel.shutdownNow();
        gatewayServer.shutdownNow();
        backendServer.shutdownNow();
    }

    @Test
    void unaryCallsAndTheirMetadataCrossTheGatewayButCredentialsDoNot() {
        Metadata headers = new Metadata();
        headers.put(TRACE, "abc123");
        headers.put(Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER), "Bearer secret");
        ExtrapolationJob job = ExtrapolationServiceGrpc.newBlockingStub(gatewayChannel)
                .withInterceptors(MetadataUtils.newAttachHeadersInterceptor(headers))
                .getJob(GetExtrapolationJobRequest.newBuilder().setJobId("j1").build());
        assertThat(job.getJobId()).isEqualTo("j1");
        assertThat(backend.trace.get()).isEqualTo("abc123");
        assertThat(backend.authorization.get()).isNull();
    }

    @Test
    void theBackendsStatusComesBackUnchanged() {
        assertThatThrownBy(() -> ExtrapolationServiceGrpc.newBlockingStub(gatewayChannel)
                .getJob(GetExtrapolationJobRequest.newBuilder().setJobId("missing").build()))
                .isInstanceOfSatisfying(StatusRuntimeException.class, e -> {
                    assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.NOT_FOUND);
                    assertThat(e.getStatus().getDescription()).isEqualTo("no job missing");
                });
    }

    @Test
    void aClientCancelReachesTheBackendAndTheDeadlineTravels() throws Exception {
        io.grpc.Context.CancellableContext context = io.grpc.Context.current().withCancellation();
        Iterator<ExtrapolateEvent> events = context.call(() -> ExtrapolationServiceGrpc.newBlockingStub(gatewayChannel)
                .withDeadlineAfter(30, TimeUnit.SECONDS)
                .extrapolate(ExtrapolateRequest.newBuilder().setOutputModel("m").build()));
        assertThat(events.next().getJobId()).isEqualTo("m-0");
        assertThat(events.next().getJobId()).isEqualTo("m-1");
        context.cancel(null);
        assertThat(backend.cancelled.await(5, TimeUnit.SECONDS)).as("backend saw the cancel").isTrue();
        assertThat(backend.deadline.get()).isNotNull();
        assertThat(backend.deadline.get().timeRemaining(TimeUnit.SECONDS)).isBetween(20L, 30L);
    }

    @Test
    void anExpiredDeadlineCancelsTheBackendCall() throws Exception {
        assertThatThrownBy(() -> ExtrapolationServiceGrpc.newBlockingStub(gatewayChannel)
                .withDeadlineAfter(300, TimeUnit.MILLISECONDS)
                .extrapolate(ExtrapolateRequest.newBuilder().setOutputModel("m").build())
                .forEachRemaining(e -> { }))
                .isInstanceOfSatisfying(StatusRuntimeException.class,
                        e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.DEADLINE_EXCEEDED));
        assertThat(backend.cancelled.await(5, TimeUnit.SECONDS)).isTrue();
    }

    @Test
    void anUnreachableBackendIsUnavailableNamingIt() {
        backendServer.shutdownNow();
        assertThatThrownBy(() -> ExtrapolationServiceGrpc.newBlockingStub(gatewayChannel)
                .getJob(GetExtrapolationJobRequest.newBuilder().setJobId("j").build()))
                .isInstanceOfSatisfying(StatusRuntimeException.class, e -> {
                    assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.UNAVAILABLE);
                    assertThat(e.getStatus().getDescription()).contains("extrapolation-service is not reachable");
                });
    }

    private static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}

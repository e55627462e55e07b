package dev.expo.gateway.access;

import com.google.protobuf.Descriptors;
import dev.expo.api.v1.AccessProto;
import dev.expo.api.v1.AccessServiceGrpc;
import dev.expo.api.v1.EvaluationProto;
import dev.expo.api.v1.ExtrapolationProto;
import dev.expo.api.v1.InferenceProto;
import dev.expo.api.v1.TrainingProto;
import dev.expo.api.v1.WhoAmIRequest;
import io.grpc.CallOptions;
import io.grpc.ClientCall;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import grpc.health.v1.HealthOuterClass.HealthCheckRequest;
import grpc.health.v1.HealthGrpc;
import io.grpc.stub.MetadataUtils;
import io.quarkus.test.junit.QuarkusTest;
import jakarta.inject.Inject;
import org.eclipse.microprofile.config.ConfigProvider;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Keys and roles on every public RPC and endpoint. The table is the protos themselves: every method of every expo.v1
 * file must name its role, and is called here without a key, with a client key and with an admin key. A new RPC that
 * names no role fails the first test (and the gateway refuses it to everyone).
 */
@QuarkusTest
class AccessControlTest {

    /** Every expo.v1 proto file; a file added to proto/ without being listed here fails {@link #everyFileIsListed}. */
    static final List<Descriptors.FileDescriptor> FILES = List.of(AccessProto.getDescriptor(),
            ExtrapolationProto.getDescriptor(), InferenceProto.getDescriptor(), TrainingProto.getDescriptor(),
            EvaluationProto.getDescriptor());
    private static final HttpClient HTTP = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
    private static final MethodDescriptor.Marshaller<byte[]> BYTES = new MethodDescriptor.Marshaller<>() {
        @Override
        public InputStream stream(byte[] value) {
            return new ByteArrayInputStream(value);
        }

        @Override
        public byte[] parse(InputStream stream) {
            try {
                return stream.readAllBytes();
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
    };

    static ManagedChannel channel;

    @Inject
    AccessControl access;

    @BeforeAll
    static void connect() {
        channel = ManagedChannelBuilder.forAddress("127.0.0.1", port()).usePlaintext().build();
    }

    @AfterAll
    static void close() {
        channel.shutdownNow();
    }

    /** Key names unique to the run: the test store outlives a run. */
    static String unique(String name) {
        return name + "-" + System.nanoTime();
    }

    static int port() {
        return ConfigProvider.getConfig().getValue("quarkus.http.test-port", Integer.class);
    }

    static List<Descriptors.MethodDescriptor> everyMethod() {
        List<Descriptors.MethodDescriptor> methods = new ArrayList<>();
        for (Descriptors.FileDescriptor file : FILES) {
            for (Descriptors.ServiceDescriptor service : file.getServices()) {
                methods.addAll(service.getMethods());
            }
        }
        return methods;
    }

    @Test
    void everyFileIsListed() throws Exception {
        try (var protos = java.nio.file.Files.list(java.nio.file.Path.of("../../proto/src/main/proto/expo/v1"))) {
            List<String> onDisk = protos.map(p -> "expo/v1/" + p.getFileName()).sorted().toList();
            List<String> listed = new ArrayList<>(FILES.stream().map(Descriptors.FileDescriptor::getName).toList());
            listed.add("expo/v1/common.proto");     // types only, no service
            assertThat(listed).containsExactlyInAnyOrderElementsOf(onDisk);
        }
    }

    @Test
    void everyPublicMethodNamesItsRole() {
        assertThat(everyMethod()).hasSizeGreaterThan(30).allSatisfy(method -> assertThat(
                AccessPolicy.requiredRole(method)).as(method.getFullName()).isPresent());
    }

    @Test
    void withoutAKeyEveryMethodIsUnauthenticatedAndHealthStaysOpen() {
        for (Descriptors.MethodDescriptor method : everyMethod()) {
            Status status = call(method, null);
            assertThat(status.getCode()).as(method.getFullName()).isEqualTo(Status.Code.UNAUTHENTICATED);
            assertThat(status.getDescription()).contains("needs an API key", "authorization: Bearer");
        }
        assertThat(call(everyMethod().getFirst(), "expo-k-000000000000-" + "A".repeat(43)).getDescription())
                .contains("not valid");
        assertThat(HealthGrpc.newBlockingStub(channel).check(HealthCheckRequest.getDefaultInstance()).getStatus())
                .isNotNull();
    }

    @Test
    void aClientKeyIsRefusedOnlyWhatNeedsAnAdmin() {
        String client = access.keys().create(unique("table-client"), Role.CLIENT, QuotaLimits.UNLIMITED).secret();
        String admin = access.keys().create(unique("table-admin"), Role.ADMIN, QuotaLimits.UNLIMITED).secret();
        for (Descriptors.MethodDescriptor method : everyMethod()) {
            Role needed = AccessPolicy.requiredRole(method).orElseThrow();
            Status asClient = call(method, client);
            if (needed == Role.ADMIN) {
                assertThat(asClient.getCode()).as(method.getFullName() + " " + asClient).isEqualTo(
                        Status.Code.PERMISSION_DENIED);
                assertThat(asClient.getDescription()).contains("needs the admin role", "a client key");
            } else {
                assertThat(asClient.getCode()).as(method.getFullName()).isNotIn(Status.Code.PERMISSION_DENIED,
                        Status.Code.UNAUTHENTICATED);
            }
            assertThat(call(method, admin).getCode()).as(method.getFullName()).isNotIn(
                    Status.Code.PERMISSION_DENIED, Status.Code.UNAUTHENTICATED);
        }
    }

    @Test
    void refusalsNeverBreakTheConnection() {
        String client = access.keys().create(unique("loop-client"), Role.CLIENT, QuotaLimits.UNLIMITED).secret();
        String admin = access.keys().create(unique("loop-admin"), Role.ADMIN, QuotaLimits.UNLIMITED).secret();
        Descriptors.MethodDescriptor delete = AccessProto.getDescriptor().findServiceByName("SplitService")
                .findMethodByName("DeleteSplit");
        Descriptors.MethodDescriptor list = AccessProto.getDescriptor().findServiceByName("SplitService")
                .findMethodByName("ListSplits");
        for (int i = 0; i < 100; i++) {
            assertThat(call(list, admin).getCode()).as("round " + i).isEqualTo(Status.Code.OK);
            assertThat(call(list, null).getCode()).as("round " + i).isEqualTo(Status.Code.UNAUTHENTICATED);
            assertThat(call(delete, client).getCode()).as("round " + i).isEqualTo(Status.Code.PERMISSION_DENIED);
        }
    }

    @Test
    void overItsRequestQuotaAKeyGetsResourceExhaustedWithRetryAfter() {
        String key = access.keys().create(unique("two-a-minute"), Role.CLIENT, new QuotaLimits(2, 0, 0)).secret();
        Metadata headers = new Metadata();
        headers.put(Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER), "Bearer " + key);
        var stub = AccessServiceGrpc.newBlockingStub(channel).withInterceptors(
                MetadataUtils.newAttachHeadersInterceptor(headers));
        stub.whoAmI(WhoAmIRequest.getDefaultInstance());
        stub.whoAmI(WhoAmIRequest.getDefaultInstance());
        assertThatThrownBy(() -> stub.whoAmI(WhoAmIRequest.getDefaultInstance()))
                .isInstanceOfSatisfying(StatusRuntimeException.class, e -> {
                    assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.RESOURCE_EXHAUSTED);
                    assertThat(e.getStatus().getDescription()).contains("2 requests per minute", "retry after 30 s");
                    assertThat(e.getTrailers().get(Metadata.Key.of("retry-after", Metadata.ASCII_STRING_MARSHALLER)))
                            .isEqualTo("30");
                    assertThat(io.grpc.protobuf.StatusProto.fromThrowable(e).getDetailsList()).isNotEmpty();
                });
    }

    @Test
    void theHttpApiAsksForAKeyAndARole() throws Exception {
        for (String[] endpoint : List.of(new String[] {"GET", "/v1/models"},
                new String[] {"POST", "/v1/chat/completions"}, new String[] {"POST", "/v1/completions"},
                new String[] {"GET", "/v1/expo/splits"})) {
            HttpResponse<String> response = http(endpoint[0], endpoint[1], null, "{}");
            assertThat(response.statusCode()).as(endpoint[1]).isEqualTo(401);
            assertThat(response.body()).contains("\"code\":\"invalid_api_key\"", "needs an API key");
        }
        String client = access.keys().create(unique("http-client"), Role.CLIENT, QuotaLimits.UNLIMITED).secret();
        HttpResponse<String> splits = http("GET", "/v1/expo/splits", client, null);
        assertThat(splits.statusCode()).isEqualTo(403);
        assertThat(splits.body()).contains("needs the admin role");
        HttpResponse<String> bad = http("POST", "/v1/chat/completions", client, "{\"model\": \"m\"}");
        assertThat(bad.statusCode()).isEqualTo(400);
        assertThat(bad.body()).contains("\"param\":\"messages\"");
        HttpResponse<String> unknown = http("POST", "/v1/chat/completions", client,
                "{\"model\": \"m\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"tools\": [{}]}");
        assertThat(unknown.statusCode()).isEqualTo(400);
        assertThat(unknown.body()).contains("tools");
    }

    private static HttpResponse<String> http(String method, String path, String key, String body) throws Exception {
        HttpRequest.Builder request = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port() + path))
                .method(method, body == null ? HttpRequest.BodyPublishers.noBody()
                        : HttpRequest.BodyPublishers.ofString(body)).header("content-type", "application/json");
        if (key != null) {
            request.header("authorization", "Bearer " + key);
        }
        return HTTP.send(request.build(), HttpResponse.BodyHandlers.ofString());
    }

    /** Calls a method with an empty request as raw bytes; the status it ends with. */
    private static Status call(Descriptors.MethodDescriptor method, String key) {
        MethodDescriptor<byte[], byte[]> raw = MethodDescriptor.<byte[], byte[]>newBuilder(BYTES, BYTES)
                .setFullMethodName(MethodDescriptor.generateFullMethodName(method.getService().getFullName(),
                        method.getName()))
                .setType(method.isServerStreaming() ? MethodDescriptor.MethodType.SERVER_STREAMING
                        : MethodDescriptor.MethodType.UNARY)
                .build();
        ClientCall<byte[], byte[]> call = channel.newCall(raw, CallOptions.DEFAULT.withDeadlineAfter(10,
                TimeUnit.SECONDS));
        CompletableFuture<Status> end = new CompletableFuture<>();
        Metadata headers = new Metadata();
        if (key != null) {
            headers.put(Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER), "Bearer " + key);
        }
        call.start(new ClientCall.Listener<>() {
            @Override
            public void onMessage(byte[] message) {
                if (method.isServerStreaming()) {
                    call.cancel("one message is enough", null);     // a stream that was let in: enough seen
                }
            }

            @Override
            public void onClose(Status status, Metadata trailers) {
                end.complete(status);
            }
        }, headers);
        call.request(1);
        call.sendMessage(new byte[0]);
        call.halfClose();
        return end.join();
    }
}

package dev.expo.gateway;

import dev.expo.api.v1.AccessServiceGrpc;
import dev.expo.api.v1.WhoAmIRequest;
import grpc.health.v1.HealthGrpc;
import grpc.health.v1.HealthOuterClass.HealthCheckRequest;
import io.grpc.Grpc;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.TlsChannelCredentials;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.QuarkusTestProfile;
import io.quarkus.test.junit.TestProfile;
import org.eclipse.microprofile.config.ConfigProvider;
import org.junit.jupiter.api.Test;

import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;
import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.security.KeyStore;
import java.security.cert.CertificateFactory;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * TLS on the gateway's one port, configured as an operator does it: a certificate and key from PEM files through
 * Quarkus' TLS registry, plain-text requests disabled. gRPC (with the test CA trusted) and the OpenAI HTTP API both
 * handshake; a plain-text client gets nowhere.
 */
@QuarkusTest
@TestProfile(GatewayTlsTest.WithCertificate.class)
class GatewayTlsTest {

    public static class WithCertificate implements QuarkusTestProfile {
        @Override
        public Map<String, String> getConfigOverrides() {
            return Map.of(
                    "quarkus.tls.key-store.pem.0.cert", "src/test/resources/tls/gateway.pem",
                    "quarkus.tls.key-store.pem.0.key", "src/test/resources/tls/gateway.key",
                    "quarkus.http.insecure-requests", "disabled",
                    "quarkus.http.test-ssl-port", "0");
        }
    }

    static int tlsPort() {
        return ConfigProvider.getConfig().getValue("quarkus.http.test-ssl-port", Integer.class);
    }

    @Test
    void grpcHandshakesWithTheCertificateAndStillAsksForAKey() throws Exception {
        ManagedChannel channel = Grpc.newChannelBuilderForAddress("localhost", tlsPort(),
                TlsChannelCredentials.newBuilder().trustManager(resource("tls/ca.pem")).build()).build();
        try {
            assertThat(HealthGrpc.newBlockingStub(channel).withDeadlineAfter(10, TimeUnit.SECONDS)
                    .check(HealthCheckRequest.getDefaultInstance()).getStatus()).isNotNull();
            assertThatThrownBy(() -> AccessServiceGrpc.newBlockingStub(channel).whoAmI(
                    WhoAmIRequest.getDefaultInstance())).isInstanceOfSatisfying(StatusRuntimeException.class,
                    e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.UNAUTHENTICATED));
        } finally {
            channel.shutdownNow();
        }
    }

    @Test
    void aPlainTextClientIsNotServed() {
        ManagedChannel plain = ManagedChannelBuilder.forAddress("127.0.0.1", tlsPort()).usePlaintext().build();
        try {
            assertThatThrownBy(() -> HealthGrpc.newBlockingStub(plain).withDeadlineAfter(10, TimeUnit.SECONDS)
                    .check(HealthCheckRequest.getDefaultInstance()))
                    .isInstanceOfSatisfying(StatusRuntimeException.class, e -> assertThat(e.getStatus().getCode())
                            .isIn(Status.Code.UNAVAILABLE, Status.Code.INTERNAL, Status.Code.DEADLINE_EXCEEDED));
        } finally {
            plain.shutdownNow();
        }
    }

    @Test
    void theOpenAiApiIsServedOverHttps() throws Exception {
        HttpClient https = HttpClient.newBuilder().sslContext(trusting("tls/ca.pem")).build();
        HttpResponse<String> response = https.send(HttpRequest.newBuilder(
                URI.create("https://localhost:" + tlsPort() + "/v1/models")).GET().build(),
                HttpResponse.BodyHandlers.ofString());
        assertThat(response.statusCode()).isEqualTo(401);
        assertThat(response.body()).contains("invalid_api_key");
    }

    private static InputStream resource(String name) {
        return GatewayTlsTest.class.getClassLoader().getResourceAsStream(name);
    }

    private static SSLContext trusting(String caResource) throws Exception {
        KeyStore trust = KeyStore.getInstance(KeyStore.getDefaultType());
        trust.load(null, null);
        try (InputStream in = resource(caResource)) {
            trust.setCertificateEntry("ca", CertificateFactory.getInstance("X.509").generateCertificate(in));
        }
        TrustManagerFactory factory = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        factory.init(trust);
        SSLContext context = SSLContext.getInstance("TLS");
        context.init(null, factory.getTrustManagers(), null);
        return context;
    }
}

package dev.expo.e2e;

import dev.expo.cli.demo.DemoModels;
import dev.expo.common.store.ModelStore;
import io.grpc.ManagedChannel;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.testcontainers.containers.ComposeContainer;
import org.testcontainers.containers.wait.strategy.Wait;
import org.testcontainers.junit.jupiter.Testcontainers;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

/**
 * docker-compose.yml brings up the same stack in containers, and it passes the same checks as the process stack.
 * Where no Docker engine runs (this build machine), JUnit reports the class as skipped.
 */
@Testcontainers(disabledWithoutDocker = true)
class ComposeIT {

    static final int GATEWAY_PORT = 50051;
    static Path store;
    static ComposeContainer compose;
    static ManagedChannel gateway;

    @BeforeAll
    static void up() throws Exception {
        Path root = Path.of(System.getProperty("expo.root", "..")).toAbsolutePath().normalize();
        store = Files.createTempDirectory("expo-compose-store");
        DemoModels.seed(new ModelStore(store));
        SystemChecks.writeBigPair(store);
        compose = new ComposeContainer(new File(root.toFile(), "docker-compose.yml"))
                .withEnv("EXPO_MODEL_STORE", store.toString())
                .withEnv("EXTRAPOLATION_CHUNK_ELEMENTS", "16384")
                .withEnv("EXTRAPOLATION_SYNC_EVERY_BYTES", "1048576")
                .withBuild(true)
                .withExposedService("gateway", GATEWAY_PORT,
                        Wait.forListeningPort().withStartupTimeout(Duration.ofMinutes(3)));
        compose.start();
        gateway = NettyChannelBuilder.forAddress(compose.getServiceHost("gateway", GATEWAY_PORT),
                compose.getServicePort("gateway", GATEWAY_PORT)).usePlaintext().build();
        awaitServing();
    }

    private static void awaitServing() throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofMinutes(2).toNanos();
        while (true) {
            try {
                SystemChecks.assertEveryServiceServing(gateway);
                return;
            } catch (AssertionError | RuntimeException notYet) {
                if (System.nanoTime() > deadline) {
                    throw notYet;
                }
                Thread.sleep(500);
            }
        }
    }

    @AfterAll
    static void down() {
        if (gateway != null) {
            gateway.shutdownNow();
        }
        if (compose != null) {
            compose.stop();
        }
        ModelStore.deleteTree(store);
    }

    @Test
    void everyServiceServesThroughThePublishedGateway() {
        SystemChecks.assertEveryServiceServing(gateway);
    }

    @Test
    void reflectionListsEveryPublicService() throws Exception {
        SystemChecks.assertReflectionListsEveryPublicService(gateway);
    }

    @Test
    void aCancelledStreamCancelsTheJobInItsContainer() throws Exception {
        SystemChecks.assertCancelledStreamCancelsTheJob(gateway, store, "compose-cancelled");
    }
}

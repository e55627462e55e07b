package dev.expo.e2e;

import dev.expo.benchmarks.Bearer;

import dev.expo.cli.demo.DemoModels;
import dev.expo.common.store.ModelStore;
import io.grpc.ManagedChannel;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ConditionEvaluationResult;
import org.junit.jupiter.api.extension.ExecutionCondition;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.testcontainers.containers.ComposeContainer;
import org.testcontainers.containers.wait.strategy.Wait;
import org.testcontainers.DockerClientFactory;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * docker-compose.yml brings up the same stack in containers, and it passes the same checks as the process stack.
 * Where no Docker engine runs (this build machine), the class is skipped and the build log says why.
 */
@ExtendWith(ComposeIT.DockerRequired.class)
class ComposeIT {

    /** Skips the class without a Docker engine, saying so once in the build's output (not only in its reports). */
    static final class DockerRequired implements ExecutionCondition {
        private static final AtomicBoolean SAID = new AtomicBoolean();

        @Override
        public ConditionEvaluationResult evaluateExecutionCondition(ExtensionContext context) {
            if (DockerClientFactory.instance().isDockerAvailable()) {
                return ConditionEvaluationResult.enabled("a Docker engine is available");
            }
            String reason = "no Docker engine here, so docker-compose.yml is not exercised (the same checks run on "
                    + "the process stack)";
            if (SAID.compareAndSet(false, true)) {
                System.out.println("[ComposeIT] skipped: " + reason);
            }
            return ConditionEvaluationResult.disabled(reason);
        }
    }

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
        // The gateway writes its first admin key into the store (docker-compose.yml); read once it is up.
        Path keyFile = store.resolve(".gateway/bootstrap-admin.key");
        gateway = NettyChannelBuilder.forAddress(compose.getServiceHost("gateway", GATEWAY_PORT),
                compose.getServicePort("gateway", GATEWAY_PORT)).usePlaintext()
                .intercept(Bearer.of(() -> readKey(keyFile))).build();
        awaitServing();
    }

    private static String readKey(Path file) {
        try {
            return Files.exists(file) ? Files.readString(file).strip() : null;
        } catch (java.io.IOException e) {
            return null;
        }
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

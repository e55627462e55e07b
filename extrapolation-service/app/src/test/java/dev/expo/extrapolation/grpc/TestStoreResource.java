package dev.expo.extrapolation.grpc;

import dev.expo.common.store.ModelStore;
import dev.expo.extrapolation.engine.TestStore;
import io.quarkus.test.common.QuarkusTestResourceLifecycleManager;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/** A fresh model store with the tiny reference pair (single-file and sharded), before the app starts. */
public class TestStoreResource implements QuarkusTestResourceLifecycleManager {

    static Path root;

    @Override
    public Map<String, String> start() {
        try {
            root = Files.createTempDirectory("expo-test-store");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        TestStore.with(root, "sft=tiny-llama-sft", "dpo=tiny-llama-dpo", "dpo-sharded=tiny-llama-dpo-sharded",
                "mistral=tiny-mistral");
        return Map.of("expo.model-store", root.toString());
    }

    @Override
    public void stop() {
        ModelStore.deleteTree(root);
    }
}

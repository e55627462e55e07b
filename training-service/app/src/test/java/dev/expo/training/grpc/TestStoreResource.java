package dev.expo.training.grpc;

import dev.expo.common.store.ModelStore;
import dev.expo.inference.engine.TestModels;
import io.quarkus.test.common.QuarkusTestResourceLifecycleManager;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/** A fresh store with the tiny LLaMA and CLIP tower and the RLHF-V parquet under datasets/raw/. */
public class TestStoreResource implements QuarkusTestResourceLifecycleManager {

    static final Path FIXTURES = Path.of(System.getProperty("expo.testdata", "../../testdata/fixtures"));
    static Path root;

    @Override
    public Map<String, String> start() {
        try {
            root = Files.createTempDirectory("expo-training-store");
            TestModels.copyTree(FIXTURES.resolve("tiny-llama-sft"), root.resolve("tiny-llama-sft"));
            TestModels.copyTree(FIXTURES.resolve("tiny-clip-vision"), root.resolve("tiny-clip-vision"));
            Files.createDirectories(root.resolve("datasets/raw"));
            Files.copy(FIXTURES.resolve("rlhfv/rlhfv_synth.parquet"), root.resolve("datasets/raw/rlhfv.parquet"));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return Map.of("expo.model-store", root.toString());
    }

    @Override
    public void stop() {
        ModelStore.deleteTree(root);
    }
}

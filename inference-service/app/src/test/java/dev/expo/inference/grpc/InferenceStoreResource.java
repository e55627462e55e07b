package dev.expo.inference.grpc;

import dev.expo.common.store.ModelStore;
import dev.expo.inference.engine.TestModels;
import io.quarkus.test.common.QuarkusTestResourceLifecycleManager;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * A store with the reference models: tiny-llama (and copies with generation_config.json defaults), tiny-mistral, the
 * LoRA adapter, the CLIP tower, the reward model, and a multimodal manifest made of them with the DDPO fixture's projector and adapter.
 */
public class InferenceStoreResource implements QuarkusTestResourceLifecycleManager {

    static Path root;

    static Path fixture(String relative) {
        return Path.of(System.getProperty("expo.testdata", "../../testdata/fixtures")).resolve(relative);
    }

    @Override
    public Map<String, String> start() {
        try {
            root = Files.createTempDirectory("expo-inference-store");
            for (String model : new String[] {"tiny-llama-sft", "tiny-mistral", "tiny-llama-lora", "tiny-clip-vision",
                "tiny-reward"}) {
                TestModels.copyTree(fixture(model), root.resolve(model));
            }
            // The same model with its authors' sampling defaults, and with a broken one.
            TestModels.copyTree(fixture("tiny-llama-sft"), root.resolve("tiny-llama-greedy"));
            Files.writeString(root.resolve("tiny-llama-greedy/generation_config.json"), """
                    {"bos_token_id": 1, "eos_token_id": 2, "do_sample": false, "temperature": 0.6, "max_new_tokens": 7}
                    """);
            TestModels.copyTree(fixture("tiny-llama-sft"), root.resolve("tiny-llama-bad-defaults"));
            Files.writeString(root.resolve("tiny-llama-bad-defaults/generation_config.json"), "{\"top_p\": 1.5}");
            Path vlm = Files.createDirectories(root.resolve("tiny-vlm"));
            Files.copy(fixture("ddpo-multimodal/projector.safetensors"), vlm.resolve("projector.safetensors"));
            TestModels.copyTree(fixture("ddpo-multimodal/adapter"), vlm.resolve("adapter"));
            Files.writeString(vlm.resolve("expo-model.json"), """
                    {"type": "multimodal", "language_model": "tiny-llama-sft", "vision_tower": "tiny-clip-vision",
                     "projector": "projector.safetensors", "adapter": "adapter", "vision_layer": -2}
                    """);
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

package dev.expo.inference.engine;

import dev.expo.common.ExpoException;
import dev.expo.common.store.ModelStore;
import dev.expo.modeling.ModelOptions;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Asking the registry for an adapter: one the store lacks is NOT_FOUND as an adapter (not as a "model"); a model that
 * is not an adapter is INVALID_ARGUMENT; one already loaded is served from memory, as a loaded model is, even once its
 * folder has gone.
 */
class AdapterLookupTest {

    private Path root;
    private ModelRegistry registry;

    @BeforeEach
    void store() throws IOException {
        root = Files.createTempDirectory("expo-adapters");
        BatchingTest.store(root, "tiny-llama-sft", "tiny-llama-lora");
        registry = new ModelRegistry(new ModelStore(root), ModelOptions.cpu(), Long.MAX_VALUE);
    }

    @AfterEach
    void clean() {
        registry.close();
        ModelStore.deleteTree(root);
    }

    @Test
    void anUnknownAdapterIsNotFoundAsAnAdapter() {
        assertThatThrownBy(() -> registry.adapter("no-such-adapter"))
                .isInstanceOfSatisfying(ExpoException.class, e -> {
                    assertThat(e.kind()).isEqualTo(ExpoException.Kind.NOT_FOUND);
                    assertThat(e.getMessage()).startsWith("adapter \"no-such-adapter\" is not in the model store")
                            .contains("tiny-llama-lora");
                });
    }

    @Test
    void aLanguageModelIsNotAnAdapter() {
        assertThatThrownBy(() -> registry.adapter("tiny-llama-sft"))
                .isInstanceOfSatisfying(ExpoException.class, e -> {
                    assertThat(e.kind()).isEqualTo(ExpoException.Kind.INVALID_ARGUMENT);
                    assertThat(e.getMessage()).contains("not a LoRA adapter");
                });
    }

    @Test
    void aLoadedAdapterIsServedFromMemoryOnceItsFolderHasGone() {
        LoadedModel.Adapter first = registry.adapter("tiny-llama-lora");
        ModelStore.deleteTree(root.resolve("tiny-llama-lora"));
        assertThat(registry.adapter("tiny-llama-lora")).isSameAs(first);
    }
}

package dev.expo.inference.engine;

import dev.expo.common.ExpoException;
import dev.expo.common.store.ModelStore;
import dev.expo.modeling.ModelOptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** A folder in the store that is not a model this service serves says why, naming the file, and nothing breaks. */
class UnservableModelsTest {

    @TempDir
    Path root;

    @Test
    void eachFolderSaysWhatIsWrongWithIt() throws Exception {
        Path fixtures = Path.of(System.getProperty("expo.testdata", "../../testdata/fixtures"));
        TestModels.copyTree(fixtures.resolve("tiny-llama-sft"), root.resolve("good"));
        TestModels.copyTree(fixtures.resolve("tiny-llama-sft"), root.resolve("broken-config"));
        Files.writeString(root.resolve("broken-config/config.json"), "{\"model_type\": \"llama\", \"hidden_size\": ");
        Files.createDirectories(root.resolve("no-config"));
        Files.writeString(root.resolve("no-config/notes.txt"), "not a model");
        Files.createDirectories(root.resolve("bert"));
        Files.writeString(root.resolve("bert/config.json"),
                "{\"architectures\": [\"BertModel\"], \"model_type\": \"bert\"}");
        TestModels.copyTree(fixtures.resolve("tiny-llama-sft"), root.resolve("wrong-shapes"));
        String config = Files.readString(root.resolve("wrong-shapes/config.json"));
        Files.writeString(root.resolve("wrong-shapes/config.json"),
                config.replaceFirst("\"intermediate_size\": *(\\d+)", "\"intermediate_size\": 1$1"));
        TestModels.copyTree(fixtures.resolve("tiny-llama-sft"), root.resolve("broken-tokenizer"));
        Files.writeString(root.resolve("broken-tokenizer/tokenizer.json"), "{\"version\": \"1.0\", \"model\": ");
        Files.createDirectories(root.resolve("broken-adapter"));
        Files.writeString(root.resolve("broken-adapter/adapter_config.json"), "{\"peft_type\": ");

        long good;
        try (ModelRegistry unlimited = new ModelRegistry(new ModelStore(root), ModelOptions.cpu(), Long.MAX_VALUE)) {
            unlimited.get("good");
            good = unlimited.loadedBytes();
        }
        // A budget with room for "good" alone: a refused model must not evict it on its way to being refused.
        try (ModelRegistry registry = new ModelRegistry(new ModelStore(root), ModelOptions.cpu(), good)) {
            registry.get("good");
            expect(registry, "broken-config", ExpoException.Kind.INVALID_ARGUMENT, "config.json is not valid JSON");
            expect(registry, "no-config", ExpoException.Kind.FAILED_PRECONDITION, "has no config.json");
            expect(registry, "bert", ExpoException.Kind.FAILED_PRECONDITION, "[BertModel] (model_type bert)");
            expect(registry, "broken-adapter", ExpoException.Kind.INVALID_ARGUMENT,
                    "adapter_config.json is not valid JSON");
            expect(registry, "wrong-shapes", ExpoException.Kind.INVALID_ARGUMENT, "mlp.gate_proj.weight has shape");
            expect(registry, "broken-tokenizer", ExpoException.Kind.INVALID_ARGUMENT,
                    "tokenizer.json is not a tokenizer the Hugging Face tokenizers library can load");
            assertThat(registry.loadedNames()).containsExactly("good");
        }
    }

    private static void expect(ModelRegistry registry, String name, ExpoException.Kind kind, String message) {
        assertThatThrownBy(() -> registry.get(name)).isInstanceOfSatisfying(ExpoException.class, e -> {
            assertThat(e.kind()).isEqualTo(kind);
            assertThat(e.getMessage()).contains(message);
        });
    }
}

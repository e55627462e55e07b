package dev.expo.common;

import dev.expo.common.store.ModelStore;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class ModelStoreTest {

    @TempDir
    Path root;

    @ParameterizedTest
    @ValueSource(strings = {"../x", "..", ".", "/etc", "a/../../b", ".hidden", "a/b/c", "a b", "a\\b", "", "a/",
        "x/.."})
    void namesCannotEscapeTheStore(String name) {
        ModelStore store = new ModelStore(root);
        assertThatThrownBy(() -> store.pathOf("model", name))
                .isInstanceOfSatisfying(ExpoException.class,
                        e -> assertThat(e.kind()).isEqualTo(ExpoException.Kind.INVALID_ARGUMENT));
    }

    @Test
    void listsModelFoldersOneOrTwoLevelsDeepAndHidesStaging() throws IOException {
        ModelStore store = new ModelStore(root);
        Files.createDirectories(root.resolve("zephyr-7b-sft-full"));
        Files.writeString(root.resolve("zephyr-7b-sft-full/config.json"), "{}");
        Files.createDirectories(root.resolve("chujiezheng/zephyr_0.05"));
        Files.writeString(root.resolve("chujiezheng/zephyr_0.05/model.safetensors.index.json"), "{}");
        Files.createDirectories(root.resolve("empty-folder"));
        Path staging = store.newStagingDir("half");
        Files.writeString(staging.resolve("config.json"), "{}");
        assertThat(store.list()).containsExactly("chujiezheng/zephyr_0.05", "zephyr-7b-sft-full");
        assertThat(store.existing("model", "chujiezheng/zephyr_0.05")).isDirectory();
        assertThatThrownBy(() -> store.existing("base_model", "nope"))
                .isInstanceOfSatisfying(ExpoException.class, e -> {
                    assertThat(e.kind()).isEqualTo(ExpoException.Kind.NOT_FOUND);
                    assertThat(e.getMessage()).startsWith("base_model \"nope\" is not in the model store")
                            .contains("zephyr-7b-sft-full");
                });
    }

    @Test
    void publishMovesAStagedModelIntoPlaceAndRefusesToOverwriteUnlessAsked() throws IOException {
        ModelStore store = new ModelStore(root);
        Path first = store.newStagingDir("out");
        Files.writeString(first.resolve("config.json"), "first");
        store.publish(first, "out", false);
        assertThat(root.resolve("out/config.json")).hasContent("first");

        Path second = store.newStagingDir("out");
        Files.writeString(second.resolve("config.json"), "second");
        assertThatThrownBy(() -> store.publish(second, "out", false))
                .isInstanceOfSatisfying(ExpoException.class,
                        e -> assertThat(e.kind()).isEqualTo(ExpoException.Kind.ALREADY_EXISTS));
        assertThat(root.resolve("out/config.json")).hasContent("first");
        store.publish(second, "out", true);
        assertThat(root.resolve("out/config.json")).hasContent("second");
        store.removeAbandonedStaging();
        try (var left = Files.list(root.resolve(".staging"))) {
            assertThat(left).isEmpty();
        }
    }
}

package dev.expo.extrapolation.engine;

import dev.expo.common.store.ModelStore;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.stream.Stream;

/** A model store in a temporary folder, seeded with copies of the reference fixtures (testdata/fixtures). */
public final class TestStore {

    private TestStore() {
    }

    public static Path fixture(String relative) {
        Path path = Path.of(System.getProperty("expo.testdata", "../../testdata/fixtures")).resolve(relative);
        if (!Files.exists(path)) {
            throw new IllegalStateException("missing fixture " + path.toAbsolutePath());
        }
        return path;
    }

    /** Copies fixture folders into the store under the given names: "name=fixture/path" pairs. */
    public static ModelStore with(Path root, String... mappings) {
        ModelStore store = new ModelStore(root);
        for (String mapping : mappings) {
            String[] parts = mapping.split("=", 2);
            copyFolder(fixture(parts[1]), root.resolve(parts[0]));
        }
        return store;
    }

    public static void copyFolder(Path from, Path to) {
        try {
            Files.createDirectories(to);
            try (Stream<Path> files = Files.list(from)) {
                for (Path file : files.filter(Files::isRegularFile).toList()) {
                    Files.copy(file, to.resolve(file.getFileName()), StandardCopyOption.REPLACE_EXISTING);
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Everything under the store except the models themselves: must be empty after any job. */
    public static long stagingEntries(ModelStore store) {
        Path staging = store.root().resolve(".staging");
        if (!Files.exists(staging)) {
            return 0;
        }
        try (Stream<Path> entries = Files.list(staging)) {
            return entries.count();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}

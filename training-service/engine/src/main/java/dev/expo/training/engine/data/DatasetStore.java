package dev.expo.training.engine.data;

import dev.expo.common.ExpoException;
import dev.expo.common.store.ModelStore;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.UUID;

/**
 * Where processed datasets live: {@code <store>/datasets/<name>/}, written in a staging folder beside them and
 * renamed into place, so a half-written dataset is never visible. Raw sources named by a relative path are looked up
 * in the same folder.
 */
public final class DatasetStore {

    private final ModelStore store;

    private final Path root;

    public DatasetStore(ModelStore store) {
        this.store = store;
        this.root = store.root().resolve("datasets");
    }

    public ModelStore store() {
        return store;
    }

    public Path root() {
        return root;
    }

    public Path dir(String name) {
        return root.resolve(ModelStore.checkName("dataset", name));
    }

    public PreferenceDataset load(String name) {
        return PreferenceDataset.load(name, dir(name));
    }

    /** A source file: absolute, or relative to the datasets folder. */
    public Path source(String source) {
        if (source == null || source.isBlank()) {
            throw ExpoException.invalidArgument("source", "", "the raw dataset file is required");
        }
        Path path = Path.of(source);
        path = path.isAbsolute() ? path : root.resolve(path).normalize();
        if (!Files.isRegularFile(path)) {
            throw ExpoException.notFound("dataset source " + path + " does not exist (a relative source is looked up "
                    + "in " + root + ")");
        }
        return path;
    }

    Path newStaging(String name) {
        try {
            Path staging = Files.createDirectories(root.resolve(".staging"));
            return Files.createDirectory(staging.resolve(name.replace('/', '+') + "-" + UUID.randomUUID()));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create a staging folder in " + root, e);
        }
    }

    void publish(Path staging, String name, boolean overwrite) {
        Path target = dir(name);
        try {
            ModelStore.fsyncTree(staging);
            Files.createDirectories(target.getParent());
            if (Files.exists(target)) {
                if (!overwrite) {
                    throw new ExpoException(ExpoException.Kind.ALREADY_EXISTS, "dataset \"" + name + "\" already "
                            + "exists; choose another name or overwrite it");
                }
                Path previous = root.resolve(".staging").resolve(name.replace('/', '+') + "-replaced-"
                        + UUID.randomUUID());
                Files.move(target, previous, StandardCopyOption.ATOMIC_MOVE);
                ModelStore.deleteTree(previous);
            }
            Files.move(staging, target, StandardCopyOption.ATOMIC_MOVE);
            ModelStore.fsyncDirectory(target.getParent());
        } catch (FileAlreadyExistsException e) {
            throw new ExpoException(ExpoException.Kind.ALREADY_EXISTS, "dataset \"" + name + "\" appeared while this "
                    + "one was being written");
        } catch (IOException e) {
            throw new UncheckedIOException("cannot move dataset " + name + " into place", e);
        }
    }
}

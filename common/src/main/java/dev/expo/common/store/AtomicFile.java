package dev.expo.common.store;

import java.io.IOException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.FileAttribute;

/** A small file replaced whole: readers and a crash see the old content or the new, never a torn one. */
public final class AtomicFile {

    private AtomicFile() {
    }

    /**
     * Writes {@code content} to {@code .tmp-<name>} beside {@code file} (created with {@code attributes}, e.g.
     * owner-only permissions) and renames it over {@code file}. Where the file system cannot rename atomically, a
     * plain replacing move.
     */
    public static void replace(Path file, byte[] content, FileAttribute<?>... attributes) throws IOException {
        Path scratch = file.resolveSibling(".tmp-" + file.getFileName());
        Files.deleteIfExists(scratch);
        Files.createFile(scratch, attributes);
        Files.write(scratch, content);
        try {
            Files.move(scratch, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(scratch, file, StandardCopyOption.REPLACE_EXISTING);
        }
    }
}

package dev.expo.checkpoint;

import java.nio.file.Files;
import java.nio.file.Path;

/** The Hugging Face reference fixtures copied into the repository (testdata/fixtures, see its README.md). */
final class Fixtures {

    private Fixtures() {
    }

    static Path path(String relative) {
        Path root = Path.of(System.getProperty("expo.testdata", "../testdata/fixtures"));
        Path path = root.resolve(relative);
        if (!Files.exists(path)) {
            throw new IllegalStateException("missing fixture " + path.toAbsolutePath());
        }
        return path;
    }
}

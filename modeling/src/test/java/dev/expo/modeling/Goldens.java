package dev.expo.modeling;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.expo.checkpoint.SafetensorsFile;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/** The Hugging Face reference fixtures (testdata/fixtures, see its README.md) and comparisons with them. */
public final class Goldens {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Map<Path, SafetensorsFile> OPEN = new HashMap<>();

    private Goldens() {
    }

    public static Path path(String relative) {
        Path path = Path.of(System.getProperty("expo.testdata", "../testdata/fixtures")).resolve(relative);
        if (!Files.exists(path)) {
            throw new IllegalStateException("missing fixture " + path.toAbsolutePath());
        }
        return path;
    }

    public static synchronized float[] floats(String file, String key) {
        return OPEN.computeIfAbsent(path(file), SafetensorsFile::open).tensor(key).toFloats();
    }

    public static synchronized long[] longs(String file, String key) {
        return OPEN.computeIfAbsent(path(file), SafetensorsFile::open).tensor(key).toLongs();
    }

    public static synchronized long[] shape(String file, String key) {
        return OPEN.computeIfAbsent(path(file), SafetensorsFile::open).info(key).shape();
    }

    public static JsonNode json(String file) {
        try {
            return JSON.readTree(Files.readString(path(file)));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public static long[] prompt(String name) {
        JsonNode ids = json("inputs.json").get("prompts").get(name);
        long[] out = new long[ids.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = ids.get(i).asLong();
        }
        return out;
    }

    /** Largest absolute difference, asserted within the tolerance. */
    public static double assertClose(float[] actual, float[] expected, double tolerance, String what) {
        assertThat(actual).as(what + " length").hasSameSizeAs(expected);
        double worst = 0;
        for (int i = 0; i < actual.length; i++) {
            worst = Math.max(worst, Math.abs((double) actual[i] - expected[i]));
        }
        assertThat(worst).as(what + ": largest |difference|").isLessThanOrEqualTo(tolerance);
        return worst;
    }
}

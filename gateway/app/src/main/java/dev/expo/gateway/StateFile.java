package dev.expo.gateway;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.datatype.jsr310.JavaTimeModule;
import dev.expo.common.store.AtomicFile;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;

/**
 * The gateway's own state (its keys, its A/B splits): one JSON file each, owner-only, rewritten whole to a temporary
 * file and renamed over the old one, so a crash never leaves a torn file.
 */
public final class StateFile {

    public static final ObjectMapper JSON = new ObjectMapper().registerModule(new JavaTimeModule())
            .disable(SerializationFeature.WRITE_DATES_AS_TIMESTAMPS).enable(SerializationFeature.INDENT_OUTPUT);

    private StateFile() {
    }

    /** Reads {@code file} as {@code type}; what it holds is named by {@code what} in the error. */
    public static <T> T read(Path file, Class<T> type, String what) {
        try {
            return JSON.readValue(file.toFile(), type);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read the " + what + " in " + file + ": " + e.getMessage(), e);
        }
    }

    public static void write(Path file, Object value, String what) {
        try {
            Files.createDirectories(file.getParent());
            AtomicFile.replace(file, JSON.writeValueAsBytes(value), PosixFilePermissions.asFileAttribute(
                    PosixFilePermissions.fromString("rw-------")));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write the " + what + " to " + file + ": " + e.getMessage(), e);
        }
    }
}

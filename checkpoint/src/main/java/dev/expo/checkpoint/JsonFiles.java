package dev.expo.checkpoint;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.expo.common.ExpoException;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** The JSON files of a Hugging Face model folder (config.json, tokenizer_config.json, generation_config.json...). */
public final class JsonFiles {

    private static final ObjectMapper JSON = new ObjectMapper();

    private JsonFiles() {
    }

    /**
     * A file holding one JSON object: INVALID_ARGUMENT naming the file if it is not valid JSON or not an object; an
     * unreadable (or missing) file is an I/O error, so callers that treat absence otherwise check for it first.
     */
    public static ObjectNode readObject(Path file) {
        JsonNode node;
        try {
            node = JSON.readTree(Files.readString(file));
        } catch (JsonProcessingException e) {
            throw ExpoException.invalidArgument(file + " is not valid JSON: " + e.getOriginalMessage());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file, e);
        }
        if (!(node instanceof ObjectNode object)) {
            throw ExpoException.invalidArgument(file + " must hold a JSON object");
        }
        return object;
    }
}

package dev.expo.checkpoint;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.expo.common.ExpoException;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** A model folder's {@code config.json}, read as JSON with typed accessors for the keys the system uses. */
public record HfConfig(Path file, ObjectNode json) {

    public static final String FILE_NAME = "config.json";
    private static final java.util.regex.Pattern TORCH_DTYPE =
            java.util.regex.Pattern.compile("\"torch_dtype\"\\s*:\\s*(\"[^\"]*\"|null)");

    public static HfConfig read(Path modelDirectory) {
        Path file = modelDirectory.resolve(FILE_NAME);
        if (!Files.isRegularFile(file)) {
            throw ExpoException.failedPrecondition("model folder " + modelDirectory + " has no config.json");
        }
        return new HfConfig(file, JsonFiles.readObject(file));
    }

    public List<String> architectures() {
        List<String> names = new ArrayList<>();
        JsonNode node = json.get("architectures");
        if (node != null && node.isArray()) {
            node.forEach(n -> names.add(n.asText()));
        }
        return names;
    }

    public String modelType() {
        return text("model_type");
    }

    public String text(String key) {
        JsonNode node = json.get(key);
        return node == null || node.isNull() ? null : node.asText();
    }

    /** {@code num_hidden_layers}, also looked up in {@code text_config} (multimodal configs); -1 if absent. */
    public int numHiddenLayers() {
        for (JsonNode node : new JsonNode[] {json, json.get("text_config")}) {
            if (node != null && node.has("num_hidden_layers") && node.get("num_hidden_layers").canConvertToInt()) {
                return node.get("num_hidden_layers").asInt();
            }
        }
        return -1;
    }

    /** The dtype named by {@code torch_dtype}, or null if absent or not a float type. */
    public DType torchDtype() {
        return Dtypes.fromTorchName(text("torch_dtype"));
    }

    /**
     * The file's text with {@code torch_dtype} set (e.g. when the weights were written in another dtype); the rest
     * of the file is kept byte for byte.
     */
    public String withTorchDtype(DType dtype) {
        try {
            String text = Files.readString(file);
            return TORCH_DTYPE.matcher(text).replaceFirst("\"torch_dtype\": \"" + dtype.torchName() + "\"");
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file, e);
        }
    }
}

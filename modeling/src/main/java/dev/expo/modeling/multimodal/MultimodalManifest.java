package dev.expo.modeling.multimodal;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.expo.common.ExpoException;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Set;

/**
 * A multimodal model as a small manifest in the store ({@code expo-model.json}): it names a language model, a vision
 * tower, a projector and optionally a LoRA adapter, so training outputs never copy base weights. Each reference is a
 * model of the store, or a path inside the manifest's own folder (e.g. {@code projector.safetensors},
 * {@code adapter}).
 *
 * <pre>
 * {"type": "multimodal", "language_model": "open_llama_3b_v2", "vision_tower": "clip-vit-base-patch16",
 *  "projector": "projector.safetensors", "adapter": "adapter", "vision_layer": -2, "drop_class_token": true}
 * </pre>
 *
 * @param adapter     null = none
 * @param visionLayer which hidden state of the tower feeds the projector (transformers' index; -2 by default)
 */
public record MultimodalManifest(String languageModel, String visionTower, String projector, String adapter,
                                 int visionLayer, boolean dropClassToken) {

    public static final String FILE = "expo-model.json";
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
    private static final Set<String> KEYS = Set.of("type", "language_model", "vision_tower", "projector", "adapter",
            "vision_layer", "drop_class_token");

    public MultimodalManifest {
        for (String[] field : new String[][] {{"language_model", languageModel}, {"vision_tower", visionTower},
            {"projector", projector}}) {
            if (field[1] == null || field[1].isBlank()) {
                throw ExpoException.invalidArgument(FILE + " needs \"" + field[0] + "\"");
            }
        }
    }

    public static MultimodalManifest read(Path dir) {
        Path file = dir.resolve(FILE);
        try {
            JsonNode json = JSON.readTree(Files.readString(file));
            for (var it = json.fieldNames(); it.hasNext(); ) {
                String key = it.next();
                if (!KEYS.contains(key)) {
                    throw ExpoException.invalidArgument(file + " has an unknown key \"" + key + "\"");
                }
            }
            if (!json.path("type").asText("multimodal").equals("multimodal")) {
                throw ExpoException.invalidArgument(file + " has type \"" + json.get("type").asText()
                        + "\"; expected \"multimodal\"");
            }
            return new MultimodalManifest(json.path("language_model").asText(null),
                    json.path("vision_tower").asText(null), json.path("projector").asText(null),
                    json.hasNonNull("adapter") ? json.get("adapter").asText() : null,
                    json.path("vision_layer").asInt(-2), json.path("drop_class_token").asBoolean(true));
        } catch (NoSuchFileException e) {
            throw ExpoException.failedPrecondition(dir + " has no " + FILE);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw ExpoException.invalidArgument(file + " is not valid JSON: " + e.getOriginalMessage());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file, e);
        }
    }

    public void write(Path dir) throws IOException {
        ObjectNode json = JSON.createObjectNode();
        json.put("type", "multimodal");
        json.put("language_model", languageModel);
        json.put("vision_tower", visionTower);
        json.put("projector", projector);
        if (adapter != null) {
            json.put("adapter", adapter);
        }
        json.put("vision_layer", visionLayer);
        json.put("drop_class_token", dropClassToken);
        Files.writeString(dir.resolve(FILE), JSON.writeValueAsString(json) + "\n");
    }

    /**
     * A reference resolved against the manifest's folder: the path inside it if it exists there (and stays there),
     * otherwise null (then it names a model of the store).
     */
    public static Path local(Path manifestDir, String reference) {
        if (reference == null || reference.startsWith("/") || reference.contains("..")) {
            return null;
        }
        Path path = manifestDir.resolve(reference).normalize();
        return path.startsWith(manifestDir) && Files.exists(path) ? path : null;
    }
}

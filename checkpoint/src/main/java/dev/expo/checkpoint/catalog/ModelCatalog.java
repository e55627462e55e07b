package dev.expo.checkpoint.catalog;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.expo.checkpoint.DType;
import dev.expo.checkpoint.HfConfig;
import dev.expo.checkpoint.JsonFiles;
import dev.expo.checkpoint.SafetensorsHeader;
import dev.expo.checkpoint.TensorInfo;
import dev.expo.common.ExpoException;
import dev.expo.common.store.ModelStore;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.channels.FileChannel;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;

/**
 * Describes the models in a store from their files alone: config.json (or adapter_config.json, or the multimodal
 * manifest) and the safetensors headers. Nothing is loaded; a broken folder is listed as UNKNOWN, not an error, so one
 * bad model never hides the others.
 */
public final class ModelCatalog {

    public static final String MANIFEST = "expo-model.json";
    private static final ObjectMapper JSON = new ObjectMapper();

    private final ModelStore store;

    public ModelCatalog(ModelStore store) {
        this.store = store;
    }

    public List<ModelDescription> list() {
        List<ModelDescription> models = new ArrayList<>();
        for (String name : store.list()) {
            models.add(describe(name));
        }
        return models;
    }

    /** NOT_FOUND if the store has no such model. */
    public ModelDescription describe(String name) {
        return describe("model", name);
    }

    /** NOT_FOUND, naming the request's {@code field}, if the store has no such model. */
    public ModelDescription describe(String field, String name) {
        Path dir = store.existing(field, name);
        WeightsSummary weights = summarize(dir);
        try {
            if (Files.isRegularFile(dir.resolve(MANIFEST))) {
                return new ModelDescription(name, ModelKind.MULTIMODAL, "multimodal", weights.dtype,
                        weights.bytes, weights.parameters, text(JSON.readTree(dir.resolve(MANIFEST).toFile()),
                        "language_model"));
            }
            if (Files.isRegularFile(dir.resolve("adapter_config.json"))) {
                JsonNode adapter = JSON.readTree(dir.resolve("adapter_config.json").toFile());
                return new ModelDescription(name, ModelKind.ADAPTER, text(adapter, "peft_type"), weights.dtype,
                        weights.bytes, weights.parameters, text(adapter, "base_model_name_or_path"));
            }
            if (Files.isRegularFile(dir.resolve(HfConfig.FILE_NAME))) {
                HfConfig config = HfConfig.read(dir);
                String architecture = config.architectures().isEmpty() ? config.modelType()
                        : config.architectures().getFirst();
                return new ModelDescription(name, kindOf(config, architecture), architecture,
                        weights.dtype != null ? weights.dtype : config.torchDtype(), weights.bytes,
                        weights.parameters, null);
            }
        } catch (IOException | ExpoException e) {
            // Unreadable config: listed as UNKNOWN below.
        }
        return new ModelDescription(name, ModelKind.UNKNOWN, null, weights.dtype, weights.bytes, weights.parameters,
                null);
    }

    /**
     * Why {@link #describe} lists a model as UNKNOWN, as the error for someone who asks to use it: INVALID_ARGUMENT
     * naming a malformed file, else FAILED_PRECONDITION saying what the folder lacks or what it holds instead.
     */
    public ExpoException whyUnknown(String name) {
        Path dir = store.existing("model", name);
        for (String file : List.of(MANIFEST, "adapter_config.json")) {
            Path path = dir.resolve(file);
            if (Files.isRegularFile(path)) {
                try {
                    JsonFiles.readObject(path);
                } catch (ExpoException e) {
                    return e;
                } catch (UncheckedIOException e) {
                    return ExpoException.failedPrecondition(e.getMessage());
                }
            }
        }
        if (!Files.isRegularFile(dir.resolve(HfConfig.FILE_NAME))) {
            return ExpoException.failedPrecondition("model \"" + name + "\" has no " + HfConfig.FILE_NAME
                    + ", adapter_config.json or " + MANIFEST + ": not a model this system can use");
        }
        try {
            HfConfig config = HfConfig.read(dir);
            return ExpoException.failedPrecondition("model \"" + name + "\" is " + config.architectures()
                    + " (model_type " + config.modelType() + "): not a causal language model, a CLIP vision tower,"
                    + " a multimodal manifest or an adapter");
        } catch (ExpoException e) {
            return e;
        } catch (RuntimeException e) {
            return ExpoException.failedPrecondition("cannot read " + dir.resolve(HfConfig.FILE_NAME) + ": "
                    + e.getMessage());
        }
    }

    private static ModelKind kindOf(HfConfig config, String architecture) {
        String type = config.modelType() == null ? "" : config.modelType();
        String arch = architecture == null ? "" : architecture;
        if (type.equals("expo_projector") || arch.equals("LinearProjector")) {
            return ModelKind.PROJECTOR;
        }
        if (type.startsWith("clip") || arch.startsWith("CLIP")) {
            return ModelKind.VISION_TOWER;
        }
        if (arch.endsWith("ForCausalLM") || arch.endsWith("LMHeadModel")) {
            return ModelKind.LANGUAGE_MODEL;
        }
        if (arch.endsWith("ForSequenceClassification")) {
            return ModelKind.REWARD_MODEL;
        }
        return ModelKind.UNKNOWN;
    }

    private record WeightsSummary(long bytes, long parameters, DType dtype) {
    }

    /** Sizes and parameter counts from the headers of every .safetensors file in the folder. */
    private static WeightsSummary summarize(Path dir) {
        long bytes = 0;
        long parameters = 0;
        Map<DType, Long> bytesByType = new EnumMap<>(DType.class);
        try (DirectoryStream<Path> files = Files.newDirectoryStream(dir, "*.safetensors")) {
            for (Path file : files) {
                bytes += Files.size(file);
                try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
                    for (TensorInfo tensor : SafetensorsHeader.read(channel, file.toString()).tensors()) {
                        parameters += tensor.elementCount();
                        bytesByType.merge(tensor.dtype(), tensor.byteSize(), Long::sum);
                    }
                } catch (ExpoException malformed) {
                    // Counted by size only.
                }
            }
        } catch (IOException e) {
            return new WeightsSummary(bytes, parameters, null);
        }
        DType main = bytesByType.entrySet().stream().max(Map.Entry.comparingByValue()).map(Map.Entry::getKey)
                .orElse(null);
        return new WeightsSummary(bytes, parameters, main);
    }

    private static String text(JsonNode node, String key) {
        JsonNode value = node == null ? null : node.get(key);
        return value == null || value.isNull() ? null : value.asText();
    }
}

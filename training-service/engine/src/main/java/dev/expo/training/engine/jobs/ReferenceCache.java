package dev.expo.training.engine.jobs;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.expo.common.store.ModelStore;
import dev.expo.training.engine.data.PreferenceDataset;

import static dev.expo.training.engine.data.DatasetPreprocessor.hex;
import static dev.expo.training.engine.data.DatasetPreprocessor.sha256;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeMap;
import java.util.UUID;

/**
 * The reference log-probs of a dataset's pairs, stored with the dataset ({@code <dataset>/reference/<key>.json}) and
 * reused by every job whose reference is the same: the key hashes the dataset's fingerprint, both models (config
 * files by content; weight files by name, size and modification time, so a 14 GB checkpoint is not re-read to start
 * a job), the initial projector's values, gamma, the sum/average form and the vision layer.
 */
final class ReferenceCache {

    private static final ObjectMapper JSON = new ObjectMapper();

    private final Path file;
    private final ObjectNode key;

    private ReferenceCache(Path file, ObjectNode key) {
        this.file = file;
        this.key = key;
    }

    static ReferenceCache of(PreferenceDataset dataset, Path lmDir, Path towerDir, float[] projectorWeight,
                             float[] projectorBias, TrainingRequest request) {
        ObjectNode key = JSON.createObjectNode();
        key.put("dataset", dataset.fingerprint());
        key.put("language_model", modelFingerprint(lmDir));
        key.put("vision_tower", modelFingerprint(towerDir));
        key.put("projector", floatsSha256(projectorWeight, projectorBias));
        key.put("gamma", request.gamma());
        key.put("average", request.average());
        key.put("vision_layer", request.visionLayer());
        if (request.mixedPrecision()) {
            key.put("precision", "fp16-mixed");   // an FP16 forward gives other log-probs; FP32 keeps the old keys
        }
        String name = hex(sha256().digest(key.toString().getBytes(StandardCharsets.UTF_8)));
        return new ReferenceCache(dataset.dir().resolve("reference").resolve(name + ".json"), key);
    }

    /** The cached (pc, pr) by row, or null when this reference was never computed. */
    Map<Long, double[]> read() {
        if (!Files.isRegularFile(file)) {
            return null;
        }
        try {
            JsonNode json = JSON.readTree(file.toFile());
            if (!key.equals(json.get("key"))) {
                return null;
            }
            Map<Long, double[]> out = new LinkedHashMap<>();
            for (JsonNode row : json.get("rows")) {
                out.put(row.get(0).asLong(), new double[] {row.get(1).asDouble(), row.get(2).asDouble()});
            }
            return out;
        } catch (IOException | RuntimeException e) {
            return null; // a damaged cache is recomputed
        }
    }

    void write(Map<Long, double[]> reference) {
        ObjectNode json = JSON.createObjectNode();
        json.set("key", key);
        ArrayNode rows = json.putArray("rows");
        new TreeMap<>(reference).forEach((row, logps) -> rows.addArray().add(row).add(logps[0]).add(logps[1]));
        Path scratch = file.resolveSibling(".tmp-" + UUID.randomUUID());
        try {
            Files.createDirectories(file.getParent());
            Files.writeString(scratch, json.toString());
            Files.move(scratch, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            ModelStore.deleteTree(scratch);
            throw new UncheckedIOException("cannot write the reference cache " + file, e);
        }
    }

    Path file() {
        return file;
    }

    private static String modelFingerprint(Path dir) {
        MessageDigest digest = sha256();
        try (var files = Files.list(dir)) {
            for (Path f : files.sorted().toList()) {
                String name = f.getFileName().toString();
                if (!Files.isRegularFile(f)) {
                    continue;
                }
                digest.update(name.getBytes(StandardCharsets.UTF_8));
                if (name.endsWith(".json")) {
                    digest.update(Files.readAllBytes(f));
                } else {
                    digest.update((Files.size(f) + "/" + Files.getLastModifiedTime(f).toMillis())
                            .getBytes(StandardCharsets.UTF_8));
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list " + dir, e);
        }
        return hex(digest.digest());
    }

    private static String floatsSha256(float[]... arrays) {
        MessageDigest digest = sha256();
        for (float[] values : arrays) {
            ByteBuffer buffer = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
            buffer.asFloatBuffer().put(values);
            digest.update(buffer);
        }
        return hex(digest.digest());
    }
}

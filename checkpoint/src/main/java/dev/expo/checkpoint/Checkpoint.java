package dev.expo.checkpoint;

import com.fasterxml.jackson.databind.JsonNode;
import dev.expo.common.ExpoException;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Pattern;

/**
 * The weights of one model folder, single-file ({@code model.safetensors}) or sharded
 * ({@code model.safetensors.index.json} naming {@code model-0000i-of-0000n.safetensors}), every shard memory-mapped.
 * The same goes for other prefixes, e.g. {@code adapter_model} of a PEFT adapter.
 */
public final class Checkpoint implements AutoCloseable {

    private static final Pattern PLAIN_FILE_NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]*\\.safetensors");

    private final Path directory;
    private final List<SafetensorsFile> shards;
    private final Map<String, SafetensorsFile> shardOf = new LinkedHashMap<>();
    private final boolean sharded;

    private Checkpoint(Path directory, List<SafetensorsFile> shards, boolean sharded) {
        this.directory = directory;
        this.shards = List.copyOf(shards);
        this.sharded = sharded;
        for (SafetensorsFile shard : shards) {
            for (TensorInfo tensor : shard.tensors()) {
                SafetensorsFile previous = shardOf.put(tensor.name(), shard);
                if (previous != null) {
                    close();
                    throw ExpoException.invalidArgument("tensor \"" + tensor.name() + "\" is stored twice, in "
                            + previous.path().getFileName() + " and " + shard.path().getFileName());
                }
            }
        }
    }

    /** Opens {@code model.safetensors} or {@code model.safetensors.index.json} in the folder. */
    public static Checkpoint open(Path directory) {
        return open(directory, "model");
    }

    public static Checkpoint open(Path directory, String prefix) {
        Path index = directory.resolve(prefix + ".safetensors.index.json");
        Path single = directory.resolve(prefix + ".safetensors");
        if (Files.isRegularFile(index)) {
            return openSharded(directory, index);
        }
        if (Files.isRegularFile(single)) {
            return new Checkpoint(directory, List.of(SafetensorsFile.open(single)), false);
        }
        String hint = Files.exists(directory.resolve("pytorch_model.bin"))
                || Files.exists(directory.resolve("pytorch_model.bin.index.json"))
                ? " (it has PyTorch .bin weights; convert them to safetensors first)" : "";
        throw ExpoException.failedPrecondition("model folder " + directory + " has neither " + single.getFileName()
                + " nor " + index.getFileName() + hint);
    }

    private static Checkpoint openSharded(Path directory, Path index) {
        Map<String, List<String>> tensorsByFile = readIndex(index);
        List<SafetensorsFile> shards = new ArrayList<>();
        try {
            for (Map.Entry<String, List<String>> entry : tensorsByFile.entrySet()) {
                SafetensorsFile shard = SafetensorsFile.open(directory.resolve(entry.getKey()));
                shards.add(shard);
                for (String name : entry.getValue()) {
                    if (!shard.contains(name)) {
                        throw ExpoException.invalidArgument(index + " puts tensor \"" + name + "\" in "
                                + entry.getKey() + ", which does not contain it");
                    }
                }
                if (shard.tensors().size() != entry.getValue().size()) {
                    List<String> extra = shard.tensors().stream().map(TensorInfo::name)
                            .filter(n -> !entry.getValue().contains(n)).limit(5).toList();
                    throw ExpoException.invalidArgument(entry.getKey() + " holds tensors the index " + index
                            .getFileName() + " does not list: " + extra);
                }
            }
            return new Checkpoint(directory, shards, true);
        } catch (RuntimeException e) {
            shards.forEach(SafetensorsFile::close);
            throw e;
        }
    }

    /** Shard file name -> its tensor names, shards in file-name order. */
    private static Map<String, List<String>> readIndex(Path index) {
        JsonNode weightMap = JsonFiles.readObject(index).get("weight_map");
        if (weightMap == null || !weightMap.isObject() || weightMap.isEmpty()) {
            throw ExpoException.invalidArgument(index + " has no weight_map object");
        }
        Map<String, List<String>> byFile = new TreeMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = weightMap.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> entry = it.next();
            String file = entry.getValue().asText();
            if (!entry.getValue().isTextual() || !PLAIN_FILE_NAME.matcher(file).matches()) {
                throw ExpoException.invalidArgument(index + " maps \"" + entry.getKey() + "\" to " + entry.getValue()
                        + ", which is not a .safetensors file name in the same folder");
            }
            byFile.computeIfAbsent(file, f -> new ArrayList<>()).add(entry.getKey());
        }
        return byFile;
    }

    public Path directory() {
        return directory;
    }

    public boolean isSharded() {
        return sharded;
    }

    public List<SafetensorsFile> shards() {
        return shards;
    }

    /** Every tensor, shard by shard, each in data order. */
    public List<TensorInfo> tensors() {
        List<TensorInfo> all = new ArrayList<>();
        for (SafetensorsFile shard : shards) {
            all.addAll(shard.tensors());
        }
        return all;
    }

    public boolean contains(String name) {
        return shardOf.containsKey(name);
    }

    public TensorInfo info(String name) {
        return shard(name).info(name);
    }

    public Tensor tensor(String name) {
        return shard(name).tensor(name);
    }

    /**
     * Refuses weights that are not of {@code expected} shapes (by name), as transformers refuses a "size mismatch",
     * or not of a floating-point dtype (F32, F16, BF16); {@code source} says where the shapes come from (e.g. the
     * config's sizes). Absent tensors are not checked here: the loader that needs one names it.
     */
    public void requireWeights(Map<String, long[]> expected, String source) {
        expected.forEach((name, shape) -> {
            if (!contains(name)) {
                return;
            }
            TensorInfo tensor = info(name);
            if (!Arrays.equals(tensor.shape(), shape)) {
                throw ExpoException.invalidArgument(directory + ": tensor " + name + " has shape "
                        + Arrays.toString(tensor.shape()) + ", but " + source + " makes it " + Arrays.toString(shape));
            }
            if (tensor.dtype() != DType.F32 && tensor.dtype() != DType.F16 && tensor.dtype() != DType.BF16) {
                throw ExpoException.invalidArgument(directory + ": tensor " + name + " has dtype " + tensor.dtype()
                        + "; weights must be F32, F16 or BF16");
            }
        });
    }

    public SafetensorsFile shard(String name) {
        SafetensorsFile shard = shardOf.get(name);
        if (shard == null) {
            throw ExpoException.notFound("tensor \"" + name + "\" is not in the checkpoint at " + directory);
        }
        return shard;
    }

    /** Total bytes of tensor data. */
    public long dataBytes() {
        return shards.stream().mapToLong(s -> s.header().dataSize()).sum();
    }

    public Map<String, TensorInfo> byName() {
        Map<String, TensorInfo> map = new LinkedHashMap<>();
        for (TensorInfo tensor : tensors()) {
            map.put(tensor.name(), tensor);
        }
        return Collections.unmodifiableMap(map);
    }

    @Override
    public void close() {
        shards.forEach(SafetensorsFile::close);
    }
}

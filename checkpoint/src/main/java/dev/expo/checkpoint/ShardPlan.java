package dev.expo.checkpoint;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * How a model's tensors are split into files: one {@code model.safetensors}, or shards
 * {@code model-0000i-of-0000n.safetensors} with a {@code model.safetensors.index.json} as Hugging Face writes them.
 */
public record ShardPlan(List<Shard> shards, boolean sharded) {

    public static final String SINGLE_FILE = "model.safetensors";
    public static final String INDEX_FILE = "model.safetensors.index.json";

    public record Shard(String fileName, SafetensorsLayout layout) {
    }

    public ShardPlan {
        shards = List.copyOf(shards);
    }

    /** Everything in {@code model.safetensors}. */
    public static ShardPlan singleFile(List<TensorSpec> tensors) {
        return new ShardPlan(List.of(new Shard(SINGLE_FILE, SafetensorsLayout.of(tensors))), false);
    }

    /** Given groups of tensors, one group per shard, in order; one group becomes a single file. */
    public static ShardPlan ofGroups(List<List<TensorSpec>> groups) {
        if (groups.size() == 1) {
            return singleFile(groups.getFirst());
        }
        List<Shard> shards = new ArrayList<>();
        for (int i = 0; i < groups.size(); i++) {
            shards.add(new Shard(shardName(i + 1, groups.size()), SafetensorsLayout.of(groups.get(i))));
        }
        return new ShardPlan(shards, true);
    }

    /**
     * Hugging Face's greedy split: tensors in the given order fill a shard until the next one would push it past
     * {@code maxShardBytes}; a tensor larger than the limit gets a shard of its own.
     */
    public static ShardPlan greedy(List<TensorSpec> tensors, long maxShardBytes) {
        if (maxShardBytes <= 0) {
            throw new IllegalArgumentException("max shard size must be positive: " + maxShardBytes);
        }
        List<List<TensorSpec>> groups = new ArrayList<>();
        List<TensorSpec> current = new ArrayList<>();
        long currentBytes = 0;
        for (TensorSpec spec : tensors) {
            if (!current.isEmpty() && currentBytes + spec.byteSize() > maxShardBytes) {
                groups.add(current);
                current = new ArrayList<>();
                currentBytes = 0;
            }
            current.add(spec);
            currentBytes += spec.byteSize();
        }
        if (!current.isEmpty() || groups.isEmpty()) {
            groups.add(current);
        }
        return ofGroups(groups);
    }

    public static String shardName(int index, int count) {
        return String.format("model-%05d-of-%05d.safetensors", index, count);
    }

    public long totalDataBytes() {
        return shards.stream().mapToLong(s -> s.layout().dataSize()).sum();
    }

    public long totalFileBytes() {
        return shards.stream().mapToLong(s -> s.layout().fileSize()).sum();
    }

    public int tensorCount() {
        return shards.stream().mapToInt(s -> s.layout().tensors().size()).sum();
    }

    /**
     * Writes {@code model.safetensors.index.json} exactly as transformers does
     * ({@code json.dumps(index, indent=2, sort_keys=True) + "\n"}); a single-file plan writes nothing.
     */
    public void writeIndex(Path directory) throws IOException {
        if (!sharded) {
            return;
        }
        Map<String, String> weightMap = new TreeMap<>();
        for (Shard shard : shards) {
            for (TensorInfo tensor : shard.layout().tensors()) {
                weightMap.put(tensor.name(), shard.fileName());
            }
        }
        StringBuilder json = new StringBuilder();
        json.append("{\n  \"metadata\": {\n    \"total_size\": ").append(totalDataBytes()).append("\n  },\n");
        json.append("  \"weight_map\": {");
        boolean first = true;
        for (Map.Entry<String, String> entry : weightMap.entrySet()) {
            json.append(first ? "\n" : ",\n");
            json.append("    ").append(JsonDumps.string(entry.getKey(), true)).append(": ")
                    .append(JsonDumps.string(entry.getValue(), true));
            first = false;
        }
        json.append(weightMap.isEmpty() ? "}\n}\n" : "\n  }\n}\n");
        Files.writeString(directory.resolve(INDEX_FILE), json, StandardCharsets.UTF_8);
    }
}

package dev.expo.extrapolation.engine;

import dev.expo.checkpoint.Checkpoint;
import dev.expo.checkpoint.DType;
import dev.expo.checkpoint.HfConfig;
import dev.expo.checkpoint.SafetensorsFile;
import dev.expo.checkpoint.ShardPlan;
import dev.expo.checkpoint.TensorInfo;
import dev.expo.checkpoint.TensorSpec;
import dev.expo.common.ExpoException;
import dev.expo.common.store.ModelStore;
import dev.expo.extrapolation.engine.schedule.AlphaSchedule;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Turns a spec into a plan, checking everything that can be checked before a byte is written: both models exist,
 * share an architecture and every tensor name, shape and dtype, every dtype is one we compute with, and the schedule
 * fits the model's depth.
 */
public final class Planner {

    /** A tensor of decoder layer N: {@code model.layers.N.} (or {@code ....layers.N.} under another prefix). */
    private static final Pattern LAYER = Pattern.compile("(?:^|\\.)layers\\.(\\d+)\\.");
    private static final int MAX_LISTED = 5;

    private final ModelStore store;

    public Planner(ModelStore store) {
        this.store = store;
    }

    /**
     * @param maxShardBytes 0 keeps the aligned model's shard layout; otherwise Hugging Face's greedy split
     */
    public ExtrapolationPlan plan(ExtrapolationSpec spec, long maxShardBytes) {
        if (maxShardBytes < 0) {
            throw ExpoException.invalidArgument("max_shard_bytes", maxShardBytes, "must be 0 (keep the aligned "
                    + "model's layout) or positive");
        }
        Path baseDir = store.existing("base_model", spec.baseModel());
        Path alignedDir = store.existing("aligned_model", spec.alignedModel());
        HfConfig baseConfig = HfConfig.read(baseDir);
        HfConfig alignedConfig = HfConfig.read(alignedDir);
        checkSameArchitecture(spec, baseConfig, alignedConfig);
        Checkpoint base = Checkpoint.open(baseDir);
        Checkpoint aligned = null;
        try {
            aligned = Checkpoint.open(alignedDir);
            checkSameTensors(spec, base, aligned);
            int numLayers = numLayers(alignedConfig, aligned);
            if (spec.schedule().layers() != null) {
                spec.schedule().layers().checkDepth(numLayers);
            }
            List<PlannedTensor> tensors = assignAlphas(spec, aligned, numLayers);
            ShardPlan output = outputLayout(aligned, tensors, maxShardBytes);
            return new ExtrapolationPlan(spec, base, aligned, numLayers, tensors, output);
        } catch (RuntimeException e) {
            base.close();
            if (aligned != null) {
                aligned.close();
            }
            throw e;
        }
    }

    private static void checkSameArchitecture(ExtrapolationSpec spec, HfConfig base, HfConfig aligned) {
        if (!base.architectures().equals(aligned.architectures())
                || !Objects.equals(base.modelType(), aligned.modelType())) {
            throw ExpoException.failedPrecondition("base model \"" + spec.baseModel() + "\" is "
                    + base.architectures() + " (model_type " + base.modelType() + ") but aligned model \""
                    + spec.alignedModel() + "\" is " + aligned.architectures() + " (model_type "
                    + aligned.modelType() + "); extrapolation needs two checkpoints of the same architecture");
        }
    }

    private static void checkSameTensors(ExtrapolationSpec spec, Checkpoint base, Checkpoint aligned) {
        Map<String, TensorInfo> baseTensors = base.byName();
        Map<String, TensorInfo> alignedTensors = aligned.byName();
        List<String> onlyBase = baseTensors.keySet().stream().filter(n -> !alignedTensors.containsKey(n)).sorted()
                .toList();
        List<String> onlyAligned = alignedTensors.keySet().stream().filter(n -> !baseTensors.containsKey(n))
                .sorted().toList();
        List<String> problems = new ArrayList<>();
        if (!onlyBase.isEmpty()) {
            problems.add(onlyBase.size() + " tensor(s) only in the base: " + first(onlyBase));
        }
        if (!onlyAligned.isEmpty()) {
            problems.add(onlyAligned.size() + " tensor(s) only in the aligned model: " + first(onlyAligned));
        }
        List<String> mismatched = new ArrayList<>();
        for (TensorInfo a : aligned.tensors()) {
            TensorInfo b = baseTensors.get(a.name());
            if (b == null) {
                continue;
            }
            if (!a.sameShape(b)) {
                mismatched.add(a.name() + " has shape " + b.shapeString() + " in the base but " + a.shapeString()
                        + " in the aligned model");
            } else if (a.dtype() != b.dtype()) {
                mismatched.add(a.name() + " is " + b.dtype() + " in the base but " + a.dtype()
                        + " in the aligned model");
            }
        }
        if (!mismatched.isEmpty()) {
            problems.add(mismatched.size() + " tensor(s) differ: " + first(mismatched));
        }
        if (!problems.isEmpty()) {
            throw ExpoException.failedPrecondition("base model \"" + spec.baseModel() + "\" and aligned model \""
                    + spec.alignedModel() + "\" do not match: " + String.join("; ", problems));
        }
        for (TensorInfo a : aligned.tensors()) {
            if (!a.dtype().isFloatingPoint16or32()) {
                throw ExpoException.invalidArgument("tensor \"" + a.name() + "\" of \"" + spec.alignedModel()
                        + "\" is " + a.dtype() + "; extrapolation computes with BF16, F16 and F32 tensors only");
            }
        }
    }

    private static String first(List<String> items) {
        return String.join(", ", items.subList(0, Math.min(items.size(), MAX_LISTED)))
                + (items.size() > MAX_LISTED ? ", ..." : "");
    }

    /** The decoder depth: config.json's num_hidden_layers, checked against the tensor names. */
    private static int numLayers(HfConfig config, Checkpoint aligned) {
        int highest = -1;
        String highestName = null;
        for (TensorInfo tensor : aligned.tensors()) {
            int layer = layerOf(tensor.name());
            if (layer > highest) {
                highest = layer;
                highestName = tensor.name();
            }
        }
        int configured = config.numHiddenLayers();
        if (configured < 0) {
            return highest + 1;
        }
        if (highest >= configured) {
            throw ExpoException.failedPrecondition(config.file() + " says num_hidden_layers = " + configured
                    + " but tensor " + highestName + " belongs to layer " + highest);
        }
        return configured;
    }

    static int layerOf(String tensorName) {
        Matcher matcher = LAYER.matcher(tensorName);
        if (!matcher.find()) {
            return -1;
        }
        try {
            return Integer.parseInt(matcher.group(1));
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    private static List<PlannedTensor> assignAlphas(ExtrapolationSpec spec, Checkpoint aligned, int numLayers) {
        AlphaSchedule schedule = spec.schedule();
        List<PlannedTensor> tensors = new ArrayList<>();
        for (TensorInfo tensor : aligned.tensors()) {
            int layer = layerOf(tensor.name());
            AlphaSchedule.Assignment assignment = schedule.assign(tensor.name(), layer, numLayers);
            DType out = spec.outputDtype() != null ? spec.outputDtype() : tensor.dtype();
            tensors.add(new PlannedTensor(tensor, out, assignment.alpha(), assignment.source(), layer));
        }
        return tensors;
    }

    private static ShardPlan outputLayout(Checkpoint aligned, List<PlannedTensor> tensors, long maxShardBytes) {
        Map<String, PlannedTensor> byName = new java.util.HashMap<>();
        tensors.forEach(t -> byName.put(t.name(), t));
        if (maxShardBytes > 0) {
            return ShardPlan.greedy(tensors.stream().map(Planner::specOf).toList(), maxShardBytes);
        }
        if (!aligned.isSharded()) {
            return ShardPlan.singleFile(tensors.stream().map(Planner::specOf).toList());
        }
        List<List<TensorSpec>> groups = new ArrayList<>();
        for (SafetensorsFile shard : aligned.shards()) {
            groups.add(shard.tensors().stream().map(t -> specOf(byName.get(t.name()))).toList());
        }
        return ShardPlan.ofGroups(groups);
    }

    private static TensorSpec specOf(PlannedTensor tensor) {
        return new TensorSpec(tensor.name(), tensor.outputDtype(), tensor.aligned().shape());
    }
}

package dev.expo.modeling.multimodal;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.nn.core.Linear;
import dev.expo.checkpoint.SafetensorsFile;
import dev.expo.common.ExpoException;
import dev.expo.modeling.ModelOptions;
import dev.expo.modeling.NdArrays;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The seed's fusion: a linear map from the vision tower's hidden size to the language model's, {@code x W^T + b}.
 * Stored as a safetensors file with {@code weight} [llm_hidden, vision_hidden] and {@code bias} [llm_hidden] (or
 * those names under {@code projector.}); a folder holding {@code projector.safetensors} works too.
 */
public final class Projector implements AutoCloseable {

    private final NDManager manager;
    private final NDArray weight;
    private final NDArray bias;

    private Projector(NDManager manager, NDArray weight, NDArray bias) {
        this.manager = manager;
        this.weight = weight;
        this.bias = bias;
    }

    public static Projector load(Path path, NDManager parent, ModelOptions options) {
        Path file = Files.isDirectory(path) ? path.resolve("projector.safetensors") : path;
        NDManager manager = parent.newSubManager(options.device());
        try (SafetensorsFile weights = SafetensorsFile.open(file)) {
            String prefix = weights.contains("weight") ? "" : "projector.";
            if (!weights.contains(prefix + "weight")) {
                throw ExpoException.invalidArgument(file + " has no projector weight (\"weight\" or "
                        + "\"projector.weight\")");
            }
            NDArray weight = NdArrays.load(manager, weights.tensor(prefix + "weight"), options);
            NDArray bias = weights.contains(prefix + "bias")
                    ? NdArrays.load(manager, weights.tensor(prefix + "bias"), options) : null;
            if (weight.getShape().dimension() != 2) {
                throw ExpoException.invalidArgument(file + ": the projector weight must be 2-D, not "
                        + weight.getShape());
            }
            return new Projector(manager, weight, bias);
        } catch (RuntimeException e) {
            manager.close();
            throw e;
        }
    }

    public long inputSize() {
        return weight.getShape().get(1);
    }

    public long outputSize() {
        return weight.getShape().get(0);
    }

    public NDArray apply(NDArray features) {
        return Linear.linear(features, weight, bias).singletonOrThrow();
    }

    @Override
    public void close() {
        manager.close();
    }
}

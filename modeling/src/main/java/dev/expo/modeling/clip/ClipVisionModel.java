package dev.expo.modeling.clip;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.nn.core.Linear;
import ai.djl.nn.norm.LayerNorm;
import dev.expo.checkpoint.Checkpoint;
import dev.expo.checkpoint.HfConfig;
import dev.expo.common.ExpoException;
import dev.expo.modeling.ModelOptions;
import dev.expo.modeling.NdArrays;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * CLIPVisionModel as transformers 4.44 computes it:
 *
 * <pre>
 *   x = [class_embedding; patch_embedding(pixels)] + position_embedding    (the patch conv as one matmul)
 *   x = pre_layrnorm(x)                                                   (hidden_states[0])
 *   for each layer:                                                       (hidden_states[i + 1])
 *     x = x + out_proj(attention(layer_norm1(x)))                         (q scaled by head_dim^-0.5)
 *     x = x + fc2(act(fc1(layer_norm2(x))))                               (quick_gelu for OpenAI's CLIP)
 *   pooled = post_layernorm(x[:, 0])
 * </pre>
 */
public final class ClipVisionModel implements AutoCloseable {

    private record Layer(NDArray norm1Weight, NDArray norm1Bias, NDArray qkvWeight, NDArray qkvBias,
                         NDArray outWeight, NDArray outBias, NDArray norm2Weight, NDArray norm2Bias,
                         NDArray fc1Weight, NDArray fc1Bias, NDArray fc2Weight, NDArray fc2Bias) {
    }

    private final ClipVisionConfig config;
    private final ClipImageProcessor processor;
    private final NDManager manager;
    private final NDArray classEmbedding;     // [hidden]
    private final NDArray patchWeight;        // [hidden, channels * patch * patch]
    private final NDArray positionEmbedding;  // [positions, hidden]
    private final NDArray preNormWeight;
    private final NDArray preNormBias;
    private final List<Layer> layers;
    private final NDArray postNormWeight;
    private final NDArray postNormBias;

    private ClipVisionModel(ClipVisionConfig config, ClipImageProcessor processor, NDManager manager,
                            Checkpoint weights, ModelOptions options) {
        this.config = config;
        this.processor = processor;
        this.manager = manager;
        String p = "vision_model.";
        classEmbedding = load(weights, p + "embeddings.class_embedding", options);
        patchWeight = load(weights, p + "embeddings.patch_embedding.weight", options)
                .reshape(config.hiddenSize(), (long) config.numChannels() * config.patchSize() * config.patchSize());
        positionEmbedding = load(weights, p + "embeddings.position_embedding.weight", options);
        preNormWeight = load(weights, p + "pre_layrnorm.weight", options);
        preNormBias = load(weights, p + "pre_layrnorm.bias", options);
        layers = new ArrayList<>();
        for (int i = 0; i < config.numLayers(); i++) {
            String l = p + "encoder.layers." + i + ".";
            layers.add(new Layer(
                    load(weights, l + "layer_norm1.weight", options), load(weights, l + "layer_norm1.bias", options),
                    stack(weights, options, l + "self_attn.q_proj.weight", l + "self_attn.k_proj.weight",
                            l + "self_attn.v_proj.weight"),
                    stack(weights, options, l + "self_attn.q_proj.bias", l + "self_attn.k_proj.bias",
                            l + "self_attn.v_proj.bias"),
                    load(weights, l + "self_attn.out_proj.weight", options),
                    load(weights, l + "self_attn.out_proj.bias", options),
                    load(weights, l + "layer_norm2.weight", options), load(weights, l + "layer_norm2.bias", options),
                    load(weights, l + "mlp.fc1.weight", options), load(weights, l + "mlp.fc1.bias", options),
                    load(weights, l + "mlp.fc2.weight", options), load(weights, l + "mlp.fc2.bias", options)));
        }
        postNormWeight = load(weights, p + "post_layernorm.weight", options);
        postNormBias = load(weights, p + "post_layernorm.bias", options);
    }

    public static ClipVisionModel load(Path dir, NDManager parent, ModelOptions options) {
        ClipVisionConfig config = ClipVisionConfig.from(HfConfig.read(dir));
        ClipImageProcessor processor = ClipImageProcessor.load(dir, config.imageSize());
        NDManager manager = parent.newSubManager(options.device());
        try (Checkpoint weights = Checkpoint.open(dir)) {
            config.requireWeights(weights);
            return new ClipVisionModel(config, processor, manager, weights, options);
        } catch (RuntimeException e) {
            manager.close();
            throw e;
        }
    }

    private NDArray load(Checkpoint weights, String name, ModelOptions options) {
        if (!weights.contains(name)) {
            throw ExpoException.invalidArgument(weights.directory() + " has no tensor " + name
                    + ": not a complete CLIP vision checkpoint");
        }
        return NdArrays.load(manager, weights.tensor(name), options);
    }

    private NDArray stack(Checkpoint weights, ModelOptions options, String... names) {
        ai.djl.ndarray.NDList parts = new ai.djl.ndarray.NDList();
        for (String name : names) {
            parts.add(load(weights, name, options));
        }
        return ai.djl.ndarray.NDArrays.concat(parts, 0);
    }

    public ClipVisionConfig config() {
        return config;
    }

    public ClipImageProcessor processor() {
        return processor;
    }

    /** What a forward pass gives: every hidden state (index 0 = pre-layernormed embeddings) and the pooled token. */
    public record Output(List<NDArray> hiddenStates, NDArray pooled) {

        /** transformers' hidden_states[index]; negative counts from the end (-1 = last layer, -2 = LLaVA's). */
        public NDArray hiddenState(int index) {
            int resolved = index < 0 ? hiddenStates.size() + index : index;
            if (resolved < 0 || resolved >= hiddenStates.size()) {
                throw ExpoException.invalidArgument("layer", index, "must be in [-" + hiddenStates.size() + ", "
                        + (hiddenStates.size() - 1) + "] for this vision tower");
            }
            return hiddenStates.get(resolved);
        }
    }

    /** Runs images already processed to CHW pixel values ({@code [batch, channels, size, size]} as one array). */
    public Output forward(NDManager scope, List<ClipImageProcessor.PixelValues> images) {
        int batch = images.size();
        int side = config.patchesPerSide();
        int patch = config.patchSize();
        int channels = config.numChannels();
        int hidden = config.hiddenSize();
        // Patch extraction in Java: each patch flattened in the conv weight's (channel, row, column) order.
        int patchValues = channels * patch * patch;
        float[] patches = new float[batch * side * side * patchValues];
        for (int b = 0; b < batch; b++) {
            ClipImageProcessor.PixelValues image = images.get(b);
            if (image.height() != config.imageSize() || image.width() != config.imageSize()) {
                throw ExpoException.invalidArgument("image", image.width() + "x" + image.height(),
                        "the processor must produce " + config.imageSize() + "x" + config.imageSize() + " pixels");
            }
            for (int py = 0; py < side; py++) {
                for (int px = 0; px < side; px++) {
                    int base = ((b * side + py) * side + px) * patchValues;
                    for (int c = 0; c < channels; c++) {
                        for (int ky = 0; ky < patch; ky++) {
                            for (int kx = 0; kx < patch; kx++) {
                                patches[base + (c * patch + ky) * patch + kx] =
                                        image.values()[(c * image.height() + py * patch + ky) * image.width()
                                                + px * patch + kx];
                            }
                        }
                    }
                }
            }
        }
        NDArray patchEmbeds = Linear.linear(scope.create(patches, new Shape(batch, (long) side * side, patchValues))
                .toType(patchWeight.getDataType(), false), patchWeight).singletonOrThrow();
        NDArray cls = scope.zeros(new Shape(batch, 1, hidden), patchWeight.getDataType()).add(classEmbedding);
        NDArray x = cls.concat(patchEmbeds, 1).add(positionEmbedding);
        x = layerNorm(x, preNormWeight, preNormBias);
        List<NDArray> hiddenStates = new ArrayList<>();
        hiddenStates.add(x);
        for (Layer layer : layers) {
            NDArray h = layerNorm(x, layer.norm1Weight(), layer.norm1Bias());
            x = x.add(attention(h, layer));
            h = layerNorm(x, layer.norm2Weight(), layer.norm2Bias());
            NDArray up = Linear.linear(h, layer.fc1Weight(), layer.fc1Bias()).singletonOrThrow();
            x = x.add(Linear.linear(activation(up), layer.fc2Weight(), layer.fc2Bias()).singletonOrThrow());
            hiddenStates.add(x);
        }
        NDArray pooled = layerNorm(x.get(":, 0, :"), postNormWeight, postNormBias);
        return new Output(hiddenStates, pooled);
    }

    private NDArray attention(NDArray h, Layer layer) {
        long batch = h.getShape().get(0);
        long tokens = h.getShape().get(1);
        int heads = config.numHeads();
        int dim = config.headDim();
        ai.djl.ndarray.NDList qkv = Linear.linear(h, layer.qkvWeight(), layer.qkvBias()).singletonOrThrow()
                .split(3, 2);
        NDArray q = qkv.get(0).mul(Math.pow(dim, -0.5)).reshape(batch, tokens, heads, dim).transpose(0, 2, 1, 3);
        NDArray k = qkv.get(1).reshape(batch, tokens, heads, dim).transpose(0, 2, 1, 3);
        NDArray v = qkv.get(2).reshape(batch, tokens, heads, dim).transpose(0, 2, 1, 3);
        NDArray probs = q.matMul(k.transpose(0, 1, 3, 2)).softmax(-1);
        NDArray out = probs.matMul(v).transpose(0, 2, 1, 3).reshape(batch, tokens, (long) heads * dim);
        return Linear.linear(out, layer.outWeight(), layer.outBias()).singletonOrThrow();
    }

    private NDArray activation(NDArray x) {
        return switch (config.hiddenAct()) {
            case "quick_gelu" -> x.mul(Activation.sigmoid(x.mul(1.702f)));
            case "gelu" -> Activation.gelu(x);
            default -> throw ExpoException.failedPrecondition("hidden_act \"" + config.hiddenAct()
                    + "\" is not supported (quick_gelu, gelu)");
        };
    }

    private NDArray layerNorm(NDArray x, NDArray weight, NDArray bias) {
        return LayerNorm.layerNorm(x, new Shape(config.hiddenSize()), weight, bias, (float) config.layerNormEps())
                .singletonOrThrow();
    }

    @Override
    public void close() {
        manager.close();
    }
}

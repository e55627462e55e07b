package dev.expo.modeling.llama;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.nn.core.Linear;
import ai.djl.nn.norm.Dropout;
import dev.expo.checkpoint.Checkpoint;
import dev.expo.checkpoint.HfConfig;
import dev.expo.common.ExpoException;
import dev.expo.modeling.ModelOptions;
import dev.expo.modeling.NdArrays;
import dev.expo.modeling.lora.LoraAdapter;
import dev.expo.modeling.lora.LoraApplication;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A LLaMA / Mistral decoder as transformers 4.44 computes it (eager attention), on DJL:
 *
 * <pre>
 *   x = embed_tokens(ids)                                   (or given embeddings: image tokens first)
 *   for each layer:
 *     h = rms_norm(x) * input_layernorm
 *     q, k, v = h Wq^T, h Wk^T, h Wv^T                       (one fused matmul; LoRA deltas added per module)
 *     q, k = rope(q, k)                                      (rotate-half form, theta = rope_theta)
 *     cache k, v; attention over the cached keys             (grouped-query; causal; Mistral's sliding window)
 *     x = x + o_proj(attention)
 *     h = rms_norm(x) * post_attention_layernorm
 *     x = x + down_proj(silu(gate_proj(h)) * up_proj(h))     (gate and up fused)
 *   logits = lm_head(rms_norm(x) * norm)                     (lm_head = embed_tokens when tied)
 * </pre>
 *
 * Every call works on a batch of sequences held in {@link KvCache} slots, each with its own length, so prefill,
 * decode and mixed batches are one code path. Weights are converted from BF16/F16 in Java at load time.
 */
public final class LlamaModel implements AutoCloseable {

    private static final float MASKED = -Float.MAX_VALUE;   // transformers' "min_dtype" fill value

    /** One decoder layer's weights; shapes in [out, in] as in the checkpoint. */
    private record Layer(
            NDArray inputLayernorm,   // [hidden]
            NDArray qkvProj,          // [(heads + 2 kvHeads) * headDim, hidden]: q_proj, k_proj, v_proj stacked
            NDArray oProj,            // [hidden, heads * headDim]
            NDArray postAttentionLayernorm, // [hidden]
            NDArray gateUpProj,       // [2 * intermediate, hidden]: gate_proj, up_proj stacked
            NDArray downProj) {       // [hidden, intermediate]
    }

    private final LlamaConfig config;
    private final ModelOptions options;
    private final NDManager manager;
    private final NDArray embedTokens;   // [vocab, hidden]
    private final List<Layer> layers;
    private final NDArray norm;          // [hidden]
    private final NDArray head;          // [vocab, hidden] (lm_head), or [labels, hidden] (a classifier's score)
    private final NDArray ropeCos;       // [maxPositions, headDim]
    private final NDArray ropeSin;
    // Scalars the layers divide, raise and multiply by, as arrays libtorch owns. DJL's div(Number) / pow(Number) wrap
    // the number in an array over a Java buffer and close it after the op; autograd keeps that array for the backward
    // pass, and once the GC frees the buffer the gradients read garbage (NaN, a step in twenty, every step after a
    // System.gc()). Same dtypes as DJL would make (float64, int32), so the forward's bits are unchanged.
    private final NDArray attentionScale;
    private final NDArray minusOne;

    private LlamaModel(LlamaConfig config, ModelOptions options, NDManager manager, NDArray embedTokens,
                       List<Layer> layers, NDArray norm, NDArray head) {
        this.config = config;
        this.options = options;
        this.manager = manager;
        this.embedTokens = embedTokens;
        this.layers = layers;
        this.norm = norm;
        this.head = head;
        NDArray[] rope = ropeTables(manager, config, options.computeType());
        this.ropeCos = rope[0];
        this.ropeSin = rope[1];
        this.attentionScale = NdArrays.owned(manager.create(Math.sqrt(config.headDim())));
        this.minusOne = NdArrays.owned(manager.create(-1));
    }

    /** Loads a Hugging Face checkpoint folder (config.json + model.safetensors, sharded or not). */
    public static LlamaModel load(Path dir, NDManager parent, ModelOptions options) {
        LlamaConfig config = LlamaConfig.from(HfConfig.read(dir));
        NDManager manager = parent.newSubManager(options.device());
        try (Checkpoint weights = Checkpoint.open(dir)) {
            config.requireWeights(weights);
            String head = config.isSequenceClassifier() ? "score.weight" : "lm_head.weight";
            NDArray embed = load(manager, weights, "model.embed_tokens.weight", options);
            List<Layer> layers = new ArrayList<>();
            for (int i = 0; i < config.numLayers(); i++) {
                String p = "model.layers." + i + ".";
                layers.add(new Layer(
                        load(manager, weights, p + "input_layernorm.weight", options),
                        stacked(manager, weights, options, p + "self_attn.q_proj.weight", p + "self_attn.k_proj.weight",
                                p + "self_attn.v_proj.weight"),
                        load(manager, weights, p + "self_attn.o_proj.weight", options),
                        load(manager, weights, p + "post_attention_layernorm.weight", options),
                        stacked(manager, weights, options, p + "mlp.gate_proj.weight", p + "mlp.up_proj.weight"),
                        load(manager, weights, p + "mlp.down_proj.weight", options)));
            }
            NDArray norm = load(manager, weights, "model.norm.weight", options);
            // No lm_head tensor means tied embeddings (some checkpoints omit it even without the config flag).
            NDArray lmHead = weights.contains(head) ? load(manager, weights, head, options)
                    : config.isSequenceClassifier() ? missing(dir, head) : embed;
            return new LlamaModel(config, options, manager, embed, layers, norm, lmHead);
        } catch (RuntimeException e) {
            manager.close();
            throw e;
        }
    }

    private static NDArray missing(Path dir, String name) {
        throw ExpoException.invalidArgument(dir + " has no tensor " + name);
    }

    private static NDArray load(NDManager manager, Checkpoint weights, String name, ModelOptions options) {
        if (!weights.contains(name)) {
            throw ExpoException.invalidArgument(weights.directory() + " has no tensor " + name
                    + ": not a complete LLaMA/Mistral checkpoint");
        }
        return NdArrays.load(manager, weights.tensor(name), options);
    }

    private static NDArray stacked(NDManager manager, Checkpoint weights, ModelOptions options, String... names) {
        NDList parts = new NDList();
        for (String name : names) {
            parts.add(load(manager, weights, name, options));
        }
        NDArray stacked = NDArrays.concat(parts, 0);
        parts.close();
        return stacked;
    }

    /** cos and sin of position * inv_freq, duplicated to headDim, computed in float32 as transformers does. */
    private static NDArray[] ropeTables(NDManager manager, LlamaConfig config, DataType type) {
        int dim = config.headDim();
        NDArray exponents = manager.arange(0, dim, 2, DataType.INT64).toType(DataType.FLOAT32, false).div(dim);
        NDArray invFreq = manager.create(1f).div(manager.create((float) config.ropeTheta()).pow(exponents));
        if (config.ropeScaling() != RopeScaling.NONE) {
            invFreq = manager.create(config.ropeScaling().apply(invFreq.toFloatArray()));
        }
        NDArray positions = manager.arange(0, config.maxPositions(), 1, DataType.INT64)
                .toType(DataType.FLOAT32, false);
        NDArray freqs = positions.expandDims(1).matMul(invFreq.expandDims(0));                  // [pos, dim/2]
        NDArray emb = freqs.concat(freqs, 1);                                                     // [pos, dim]
        return new NDArray[] {emb.cos().toType(type, false), emb.sin().toType(type, false)};
    }

    public LlamaConfig config() {
        return config;
    }

    public ModelOptions options() {
        return options;
    }

    public NDManager manager() {
        return manager;
    }

    public KvCache newCache(int slots, int initialCapacity) {
        return new KvCache(manager, config, options.computeType(), slots, initialCapacity);
    }

    /** Token embeddings {@code [rows, T, hidden]} of right-padded id rows. */
    public NDArray embed(NDManager scope, long[][] ids) {
        int rows = ids.length;
        int width = 0;
        for (long[] row : ids) {
            width = Math.max(width, row.length);
        }
        long[] flat = new long[rows * width];
        for (int r = 0; r < rows; r++) {
            for (int t = 0; t < ids[r].length; t++) {
                long id = ids[r][t];
                if (id < 0 || id >= config.vocabSize()) {
                    throw ExpoException.invalidArgument("token_ids", id, "must be in [0, " + config.vocabSize()
                            + ") for this model");
                }
                flat[r * width + t] = id;
            }
        }
        return embedTokens.get(scope, new NDIndex("{}", scope.create(flat))).reshape(rows, width, config.hiddenSize());
    }

    /** The result of a forward pass: final-norm hidden states, and each layer's output when asked. */
    public record Forward(NDArray hidden, List<NDArray> hiddenStates) {
    }

    /**
     * Runs new positions of a batch of sequences and appends their keys and values to the cache.
     *
     * @param inputs    {@code [B, T, hidden]} input embeddings; row b holds {@code newTokens[b]} real positions,
     *                  right-padded to T
     * @param slots     the cache slot of each row
     * @param adapters  LoRA adapters applied unmerged, each with a per-row scale (may be empty)
     * @param allHidden also return the embeddings and every layer's output (transformers' hidden_states)
     */
    public Forward forward(NDManager scope, NDArray inputs, int[] slots, int[] newTokens, KvCache cache,
                           List<LoraApplication> adapters, boolean allHidden) {
        int batch = slots.length;
        int width = (int) inputs.getShape().get(1);
        int[] starts = new int[batch];
        int keysLength = 0;
        for (int b = 0; b < batch; b++) {
            starts[b] = cache.length(slots[b]);
            keysLength = Math.max(keysLength, starts[b] + width);
        }
        cache.ensureCapacity(keysLength);
        long[] positions = new long[batch * width];
        for (int b = 0; b < batch; b++) {
            for (int t = 0; t < width; t++) {
                positions[b * width + t] = starts[b] + t;
            }
        }
        NDArray positionIds = scope.create(positions, new Shape(batch, width));
        long[] slotIds = new long[batch];
        for (int b = 0; b < batch; b++) {
            slotIds[b] = slots[b];
        }
        NDArray slotIndex = scope.create(slotIds);
        NDArray slotColumn = slotIndex.reshape(batch, 1);
        NDArray cos = ropeCos.get(scope, new NDIndex("{}", positionIds)).expandDims(1);   // [B, 1, T, headDim]
        NDArray sin = ropeSin.get(scope, new NDIndex("{}", positionIds)).expandDims(1);
        NDArray mask = mask(scope, starts, width, keysLength, null);     // [B, 1, 1, T, keys]

        int keys = keysLength;
        Forward forward = layers(inputs, cos, sin, mask, adapters, allHidden, false, (i, k, v) -> {
            cache.write(i, slotColumn, positionIds, k.transpose(0, 2, 1, 3), v);
            return new NDArray[] {cache.keys(scope, i, slots, slotIndex, keys),
                cache.values(scope, i, slots, slotIndex, keys)};
        });
        for (int b = 0; b < batch; b++) {
            cache.advance(slots[b], newTokens[b]);
        }
        return forward;
    }

    /**
     * A whole batch of sequences at once, without a cache, as training needs it (and as transformers' forward with an
     * attention mask computes it): row b holds {@code lengths[b]} real positions from position 0, right-padded to T;
     * keys past a row's length are masked. Gradients flow to whatever in {@code inputs} or the adapters' tensors
     * requires them (DJL autograd); the model's own weights never do.
     */
    public NDArray forwardSequences(NDManager scope, NDArray inputs, int[] lengths, List<LoraApplication> adapters) {
        int batch = lengths.length;
        int width = (int) inputs.getShape().get(1);
        NDArray positions = scope.arange(0, width, 1, DataType.INT64);
        NDArray cos = ropeCos.get(scope, new NDIndex("{}", positions)).expandDims(0).expandDims(0);   // [1,1,T,d]
        NDArray sin = ropeSin.get(scope, new NDIndex("{}", positions)).expandDims(0).expandDims(0);
        NDArray mask = mask(scope, new int[batch], width, width, lengths);
        return layers(inputs, cos, sin, mask, adapters, false, true,
                (i, k, v) -> new NDArray[] {k, v.transpose(0, 2, 1, 3)}).hidden();
    }

    /** Where a layer's new keys [B, kvHeads, T, d] and values [B, T, kvHeads, d] go, and the keys and values attended. */
    private interface KeysAndValues {
        NDArray[] attended(int layer, NDArray keys, NDArray values);
    }

    /**
     * @param freeEachLayer close each layer's intermediates when the layer is done (only its output is kept), as
     *                      Python frees its temporaries: under autograd the graph keeps what the backward needs and
     *                      the rest goes at once, so a training forward holds one layer's temporaries, not all of
     *                      them. Not for the cached path, whose caches keep arrays the layer made.
     */
    private Forward layers(NDArray inputs, NDArray cos, NDArray sin, NDArray mask, List<LoraApplication> adapters,
                           boolean allHidden, boolean freeEachLayer, KeysAndValues keysAndValues) {
        NDManager outer = inputs.getManager();
        NDArray[] scales = rowScales(outer, adapters);
        List<NDArray> hiddenStates = allHidden ? new ArrayList<>() : List.of();
        NDArray x = inputs;
        for (int i = 0; i < layers.size(); i++) {
            if (allHidden) {
                hiddenStates.add(x);
            }
            if (freeEachLayer) {
                try (NDManager layerScope = outer.newSubManager()) {
                    x.tempAttach(layerScope);           // the layer's results attach to x's manager: layerScope
                    NDArray next = layer(i, x, cos, sin, mask, adapters, scales, keysAndValues);
                    next.attach(outer);
                    x = next;
                }
            } else {
                x = layer(i, x, cos, sin, mask, adapters, scales, keysAndValues);
            }
        }
        NDArray hidden = rmsNorm(x, norm);
        if (allHidden) {
            hiddenStates.add(hidden);
        }
        return new Forward(hidden, hiddenStates);
    }

    /** One decoder layer: x + attention(norm(x)), then + mlp(norm(...)). */
    private NDArray layer(int i, NDArray x, NDArray cos, NDArray sin, NDArray mask, List<LoraApplication> adapters,
                          NDArray[] scales, KeysAndValues keysAndValues) {
        int batch = (int) x.getShape().get(0);
        int width = (int) x.getShape().get(1);
        Layer layer = layers.get(i);
        String prefix = "model.layers." + i + ".";
        // Attention block
        NDArray h = rmsNorm(x, layer.inputLayernorm());
        NDList qkv = Linear.linear(h, layer.qkvProj()).singletonOrThrow().split(new long[] {
            (long) config.numHeads() * config.headDim(),
            (long) (config.numHeads() + config.numKvHeads()) * config.headDim()}, 2);
        NDArray q = withLora(qkv.get(0), h, prefix + "self_attn.q_proj", adapters, scales);
        NDArray k = withLora(qkv.get(1), h, prefix + "self_attn.k_proj", adapters, scales);
        NDArray v = withLora(qkv.get(2), h, prefix + "self_attn.v_proj", adapters, scales);
        q = rope(q.reshape(batch, width, config.numHeads(), config.headDim()).transpose(0, 2, 1, 3), cos, sin);
        k = rope(k.reshape(batch, width, config.numKvHeads(), config.headDim()).transpose(0, 2, 1, 3), cos, sin);
        v = v.reshape(batch, width, config.numKvHeads(), config.headDim());
        NDArray[] attended = keysAndValues.attended(i, k, v);
        NDArray attention = attend(q, attended[0], attended[1], mask, batch, width);
        x = x.add(withLora(Linear.linear(attention, layer.oProj()).singletonOrThrow(), attention,
                prefix + "self_attn.o_proj", adapters, scales));
        // MLP block
        h = rmsNorm(x, layer.postAttentionLayernorm());
        NDList gateUp = Linear.linear(h, layer.gateUpProj()).singletonOrThrow().split(2, 2);
        NDArray gate = withLora(gateUp.get(0), h, prefix + "mlp.gate_proj", adapters, scales);
        NDArray up = withLora(gateUp.get(1), h, prefix + "mlp.up_proj", adapters, scales);
        NDArray act = gate.mul(Activation.sigmoid(gate)).mul(up);       // silu(gate) * up
        return x.add(withLora(Linear.linear(act, layer.downProj()).singletonOrThrow(), act, prefix + "mlp.down_proj",
                adapters, scales));
    }

    /** A checkpoint weight by its Hugging Face name, read from the (possibly fused) arrays. */
    public float[] weight(String name) {
        if (!name.endsWith(".weight")) {
            throw new IllegalArgumentException("not a weight name: " + name);
        }
        Slice slice = slice(name.substring(0, name.length() - ".weight".length()));
        try (NDManager scope = manager.newSubManager()) {
            return NdArrays.toFloats(slice.weight().get(scope, slice.rows()));
        }
    }

    /** Where a linear layer's weight lives: an array and the rows of it that are this layer's. */
    private record Slice(NDArray weight, NDIndex rows) {
    }

    private Slice slice(String modulePath) {
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("model\\.layers\\.(\\d+)\\.(self_attn|mlp)\\.(\\w+)")
                .matcher(modulePath);
        if (!m.matches() || Integer.parseInt(m.group(1)) >= layers.size()) {
            throw ExpoException.invalidArgument("module " + modulePath + " is not a linear layer of this model");
        }
        Layer layer = layers.get(Integer.parseInt(m.group(1)));
        long q = (long) config.numHeads() * config.headDim();
        long kv = (long) config.numKvHeads() * config.headDim();
        long inter = config.intermediateSize();
        return switch (m.group(3)) {
            case "q_proj" -> new Slice(layer.qkvProj(), new NDIndex("0:{}, :", q));
            case "k_proj" -> new Slice(layer.qkvProj(), new NDIndex("{}:{}, :", q, q + kv));
            case "v_proj" -> new Slice(layer.qkvProj(), new NDIndex("{}:{}, :", q + kv, q + 2 * kv));
            case "o_proj" -> new Slice(layer.oProj(), new NDIndex(":, :"));
            case "gate_proj" -> new Slice(layer.gateUpProj(), new NDIndex("0:{}, :", inter));
            case "up_proj" -> new Slice(layer.gateUpProj(), new NDIndex("{}:{}, :", inter, 2 * inter));
            case "down_proj" -> new Slice(layer.downProj(), new NDIndex(":, :"));
            default -> throw ExpoException.invalidArgument("module " + modulePath + " is not a linear layer of this "
                    + "model");
        };
    }

    /** lm_head (or the classifier's score head) over hidden states {@code [..., hidden]}. */
    public NDArray logits(NDArray hidden) {
        return Linear.linear(hidden, head).singletonOrThrow();
    }

    /**
     * transformers' LlamaRMSNorm: x * rsqrt(mean(x^2) + eps), then times the gain (torch's rsqrt is 1 / sqrt, and
     * pow(-1) is its reciprocal). Results belong to x's manager: every op here starts from x.
     */
    private NDArray rmsNorm(NDArray x, NDArray gain) {
        NDArray variance = x.square().mean(new int[] {-1}, true);
        return x.mul(variance.add((float) config.rmsNormEps()).sqrt().pow(minusOne)).mul(gain);
    }

    /** Rotate-half RoPE: x * cos + rotate_half(x) * sin, with rotate_half(x) = [-x2, x1]. */
    private NDArray rope(NDArray x, NDArray cos, NDArray sin) {
        NDList halves = x.split(2, 3);
        NDArray rotated = halves.get(1).neg().concat(halves.get(0), 3);
        return x.mul(cos).add(rotated.mul(sin));
    }

    /**
     * Grouped-query attention without copying keys per query head: the query heads of one key/value head are
     * stacked along the query axis, so one batched matmul serves the group.
     */
    private NDArray attend(NDArray q, NDArray keys, NDArray values, NDArray mask, int batch, int width) {
        int kvHeads = config.numKvHeads();
        int group = config.groupSize();
        int keysLength = (int) keys.getShape().get(2);
        NDArray grouped = q.reshape(batch, kvHeads, (long) group * width, config.headDim());
        NDArray scores = grouped.matMul(keys.transpose(0, 1, 3, 2)).div(attentionScale);
        NDArray probs = scores.reshape(batch, kvHeads, group, width, keysLength).add(mask).softmax(-1)
                .reshape(batch, kvHeads, (long) group * width, keysLength);
        return probs.matMul(values).reshape(batch, config.numHeads(), width, config.headDim())
                .transpose(0, 2, 1, 3).reshape(batch, width, (long) config.numHeads() * config.headDim());
    }

    /**
     * The additive mask: query t of row b (position starts[b] + t) sees key j iff j <= its position and, with a
     * sliding window W, j > position - W (exactly W keys including itself, as transformers 4.44's eager path); with
     * {@code lengths}, only keys j < lengths[b] (an attention mask over right padding).
     */
    private NDArray mask(NDManager scope, int[] starts, int width, int keysLength, int[] lengths) {
        int window = config.slidingWindow();
        float[] values = new float[starts.length * width * keysLength];
        for (int b = 0; b < starts.length; b++) {
            for (int t = 0; t < width; t++) {
                int position = starts[b] + t;
                int base = (b * width + t) * keysLength;
                for (int j = 0; j < keysLength; j++) {
                    boolean visible = j <= position && (window <= 0 || j > position - window)
                            && (lengths == null || j < lengths[b]);
                    values[base + j] = visible ? 0f : MASKED;
                }
            }
        }
        NDArray mask = scope.create(values, new Shape(starts.length, 1, 1, width, keysLength));
        return options.computeType() == DataType.FLOAT32 ? mask : mask.toType(options.computeType(), false);
    }

    private NDArray[] rowScales(NDManager scope, List<LoraApplication> adapters) {
        NDArray[] scales = new NDArray[adapters.size()];
        for (int i = 0; i < adapters.size(); i++) {
            LoraApplication application = adapters.get(i);
            float[] rows = application.rowScales().clone();
            float scaling = (float) application.adapter().config().scaling();
            for (int b = 0; b < rows.length; b++) {
                rows[b] *= scaling;
            }
            scales[i] = scope.create(rows, new Shape(rows.length, 1, 1)).toType(options.computeType(), false);
        }
        return scales;
    }

    /** base + scale * B (A x) for every adapter that adapts this module (PEFT's unmerged forward). */
    private static NDArray withLora(NDArray base, NDArray input, String module, List<LoraApplication> adapters,
                                    NDArray[] scales) {
        NDArray out = base;
        for (int i = 0; i < adapters.size(); i++) {
            LoraAdapter.Module lora = adapters.get(i).adapter().module(module);
            if (lora != null) {
                double dropout = adapters.get(i).adapter().config().dropout();
                // PEFT: lora_B(lora_A(dropout(x))); a fresh mask per module, from torch's generator.
                NDArray x = adapters.get(i).training() && dropout > 0
                        ? Dropout.dropout(input, (float) dropout, true).singletonOrThrow() : input;
                NDArray delta = Linear.linear(Linear.linear(x, lora.a()).singletonOrThrow(), lora.b())
                        .singletonOrThrow();
                double defaultScaling = adapters.get(i).adapter().config().scaling();
                if (lora.scaling() != defaultScaling) {   // a module a rank or alpha pattern names
                    delta = delta.mul(NdArrays.owned(delta.getManager().create((float) (lora.scaling()
                            / defaultScaling))));
                }
                out = out.add(delta.mul(scales[i]));
            }
        }
        return out;
    }

    @Override
    public void close() {
        manager.close();
    }
}

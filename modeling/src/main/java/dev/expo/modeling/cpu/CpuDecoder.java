package dev.expo.modeling.cpu;

import dev.expo.checkpoint.Checkpoint;
import dev.expo.checkpoint.DType;
import dev.expo.checkpoint.HfConfig;
import dev.expo.checkpoint.Tensor;
import dev.expo.checkpoint.TensorInfo;
import dev.expo.common.ExpoException;
import dev.expo.modeling.Decoder;
import dev.expo.modeling.llama.LlamaConfig;
import dev.expo.modeling.llama.RopeScaling;
import dev.expo.modeling.lora.LoraAdapter;
import dev.expo.modeling.lora.LoraApplication;

import java.lang.foreign.Arena;
import java.lang.foreign.SegmentAllocator;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;

/**
 * The LLaMA / Mistral decoder for generation on the CPU, in Java: the same computation as
 * {@link dev.expo.modeling.llama.LlamaModel} (which it is tested against, with transformers' goldens), with the
 * matrix products done by {@link MatrixKernels} straight from BF16 weights. Per generated token the work is a few
 * matrix-vector products per layer, where a call into PyTorch per small operation would cost more than the
 * arithmetic; streaming BF16 weights moves half the bytes of FP32.
 *
 * <p>Rows are positions: a forward call takes any mix of rows from any cache slots (a prompt's positions, or one
 * new token from each of several sequences), each at its slot's next position.
 */
public final class CpuDecoder implements Decoder {

    /**
     * One decoder layer's weights, matrices as [out rows, in columns] like the checkpoint's; q/k/v and gate/up are
     * stacked in the checkpoint's row order so that one product computes each group.
     */
    private record Layer(
            float[] inputLayernorm,          // [hidden]
            Matrix qkvProj,                  // [(heads + 2 * kvHeads) * headDim, hidden]: q_proj; k_proj; v_proj
            Matrix oProj,                    // [hidden, heads * headDim]
            float[] postAttentionLayernorm,  // [hidden]
            Matrix gateUpProj,               // [2 * intermediate, hidden]: gate_proj; up_proj
            Matrix downProj) {               // [hidden, intermediate]
    }

    private final LlamaConfig config;
    private final Arena arena;
    private final Matrix embedTokens;
    private final List<Layer> layers;
    private final float[] norm;
    private final Matrix lmHead;
    private final float[] ropeCos;   // [maxPositions][headDim / 2]
    private final float[] ropeSin;
    private final DType kvCacheDtype;
    private final MatrixKernels kernels;

    /** The weights of one checkpoint as the forward pass reads them. */
    private record Weights(Matrix embedTokens, List<Layer> layers, float[] norm, Matrix lmHead) {
    }

    private CpuDecoder(LlamaConfig config, Arena arena, Weights weights, DType kvCacheDtype, MatrixKernels kernels) {
        this.config = config;
        this.arena = arena;
        this.embedTokens = weights.embedTokens();
        this.layers = weights.layers();
        this.norm = weights.norm();
        this.lmHead = weights.lmHead();
        this.kvCacheDtype = kvCacheDtype;
        this.kernels = kernels.requireAvailable();
        int half = config.headDim() / 2;
        this.ropeCos = new float[config.maxPositions() * half];
        this.ropeSin = new float[config.maxPositions() * half];
        // inv_freq = 1 / theta^(2i/d) (then rope_scaling) and freq = position * inv_freq, each rounded to float32 as
        // transformers does.
        float[] inverse = config.ropeScaling().apply(RopeScaling.defaultInverseFrequencies(config.ropeTheta(),
                config.headDim()));
        for (int i = 0; i < half; i++) {
            for (int p = 0; p < config.maxPositions(); p++) {
                float freq = (float) p * inverse[i];
                ropeCos[p * half + i] = (float) Math.cos(freq);
                ropeSin[p * half + i] = (float) Math.sin(freq);
            }
        }
    }

    /** Loads a checkpoint folder, with a float32 KV cache and the best kernels this process has. */
    public static CpuDecoder load(Path dir) {
        return load(dir, DType.F32);
    }

    /** Loads a checkpoint folder; the caches it makes hold keys and values in {@code kvCacheDtype} (F32 or BF16). */
    public static CpuDecoder load(Path dir, DType kvCacheDtype) {
        return load(dir, kvCacheDtype, MatrixKernels.best());
    }

    /** Loads a checkpoint folder, its matrix products run by {@code kernels}. */
    public static CpuDecoder load(Path dir, DType kvCacheDtype, MatrixKernels kernels) {
        CpuKvCache.supported(kvCacheDtype);   // refused at load, not at the first request
        kernels.requireAvailable();
        LlamaConfig config = LlamaConfig.from(HfConfig.read(dir));
        if (config.headDim() % 2 != 0) {
            // Rotary embeddings rotate the two halves of each head (as transformers' rotate_half does).
            throw ExpoException.failedPrecondition("head_dim " + config.headDim() + " is odd; rotary embeddings "
                    + "need an even head size");
        }
        Arena arena = Arena.ofShared();
        try (Checkpoint checkpoint = Checkpoint.open(dir)) {
            config.requireWeights(checkpoint);
            return new CpuDecoder(config, arena, readWeights(checkpoint, config, arena), kvCacheDtype, kernels);
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    /** Every matrix copied into one block of (huge-page) memory, stacked as the layers use them; norms as floats. */
    private static Weights readWeights(Checkpoint checkpoint, LlamaConfig config, Arena arena) {
        // Each matrix the forward pass reads, by name, and the checkpoint tensors stacked (by rows) to make it.
        Map<String, String[]> matrices = new LinkedHashMap<>();
        matrices.put("embed_tokens", new String[] {"model.embed_tokens.weight"});
        for (int i = 0; i < config.numLayers(); i++) {
            String p = "model.layers." + i + ".";
            matrices.put(p + "qkv_proj", new String[] {p + "self_attn.q_proj.weight", p + "self_attn.k_proj.weight",
                p + "self_attn.v_proj.weight"});
            matrices.put(p + "o_proj", new String[] {p + "self_attn.o_proj.weight"});
            matrices.put(p + "gate_up_proj", new String[] {p + "mlp.gate_proj.weight", p + "mlp.up_proj.weight"});
            matrices.put(p + "down_proj", new String[] {p + "mlp.down_proj.weight"});
        }
        // The output head: a classifier's score [labels, hidden], else lm_head, or the embedding when tied.
        String head = config.isSequenceClassifier() ? "score.weight" : "lm_head.weight";
        boolean tied = !checkpoint.contains(head);
        if (tied && config.isSequenceClassifier()) {
            throw ExpoException.invalidArgument("the checkpoint has no tensor score.weight: not a complete classifier");
        }
        if (!tied) {
            matrices.put("lm_head", new String[] {head});
        }
        long bytes = 0;
        for (String[] names : matrices.values()) {
            for (String name : names) {
                Tensor t = tensor(checkpoint, name);
                bytes += TensorInfo.elementCount(t.shape()) * (t.dtype() == DType.BF16 ? 2 : 4);
            }
            bytes += 64;   // alignment
        }
        SegmentAllocator memory = SegmentAllocator.slicingAllocator(HugePages.allocate(arena, bytes));
        Map<String, Matrix> stacked = new LinkedHashMap<>();
        matrices.forEach((matrix, names) -> stacked.put(matrix, Matrix.stack(memory,
                Arrays.stream(names).map(n -> tensor(checkpoint, n)).toArray(Tensor[]::new))));
        List<Layer> layers = new ArrayList<>();
        for (int i = 0; i < config.numLayers(); i++) {
            String p = "model.layers." + i + ".";
            layers.add(new Layer(tensor(checkpoint, p + "input_layernorm.weight").toFloats(),
                    stacked.get(p + "qkv_proj"), stacked.get(p + "o_proj"),
                    tensor(checkpoint, p + "post_attention_layernorm.weight").toFloats(),
                    stacked.get(p + "gate_up_proj"), stacked.get(p + "down_proj")));
        }
        Matrix embed = stacked.get("embed_tokens");
        return new Weights(embed, layers, tensor(checkpoint, "model.norm.weight").toFloats(),
                tied ? embed : stacked.get("lm_head"));
    }

    private static Tensor tensor(Checkpoint weights, String name) {
        if (!weights.contains(name)) {
            throw ExpoException.invalidArgument(weights.directory() + " has no tensor " + name);
        }
        return weights.tensor(name);
    }

    public LlamaConfig config() {
        return config;
    }

    /** What runs this decoder's matrix products. */
    public MatrixKernels kernels() {
        return kernels;
    }

    @Override
    public long kvBytesPerPosition() {
        return 2L * config.numLayers() * config.numKvHeads() * config.headDim() * kvCacheDtype.byteSize();
    }

    @Override
    public CpuKvCache newCache(int slots) {
        return new CpuKvCache(config.numLayers(), config.numKvHeads(), config.headDim(), config.maxPositions(),
                slots, kvCacheDtype);
    }

    /** Rows are positions, each through the products and its own slot's attention alone (CpuDecoderRowsTest). */
    @Override
    public boolean rowsIndependent() {
        return true;
    }

    /** The input embedding of a token. */
    @Override
    public float[] embed(int token) {
        if (token < 0 || token >= config.vocabSize()) {
            throw ExpoException.invalidArgument("token_ids", token, "must be in [0, " + config.vocabSize() + ")");
        }
        float[] row = new float[config.hiddenSize()];
        embedTokens.row(token, row);
        return row;
    }

    /**
     * Runs rows through the decoder and appends their keys and values; returns the final-norm hidden states.
     *
     * @param inputs the rows' input embeddings
     * @param slots  each row's cache slot; rows of one slot must be in position order
     * @param lora   adapters with per-row scales (may be empty)
     */
    public float[][] forward(float[][] inputs, int[] slots, CpuKvCache cache, List<CpuLora> lora) {
        int rows = inputs.length;
        int hidden = config.hiddenSize();
        int heads = config.numHeads();
        int kvHeads = config.numKvHeads();
        int headDim = config.headDim();
        int qSize = heads * headDim;
        int kvSize = kvHeads * headDim;
        int inter = config.intermediateSize();
        int[] positions = new int[rows];
        int[] added = new int[cache.slots()];
        for (int r = 0; r < rows; r++) {
            positions[r] = cache.length(slots[r]) + added[slots[r]]++;
        }
        int span = 1 + Arrays.stream(positions).max().orElse(0);   // the most positions any row attends over
        int[] blocks = queryBlocks(slots, positions);
        int blockCount = blocks.length / 2;
        // The largest block's rows: one for a decode step, whose scores then take one row, not a block's.
        int blockRows = IntStream.range(0, blockCount).map(b -> blocks[2 * b + 1]).max().orElse(1);
        for (int s = 0; s < added.length; s++) {
            if (added[s] > 0) {
                cache.reserve(s, cache.length(s) + added[s]);
            }
        }
        float[][] x = new float[rows][];
        for (int r = 0; r < rows; r++) {
            x[r] = inputs[r].clone();
        }
        float[][] h = new float[rows][hidden];
        float[][] qkv = new float[rows][qSize + 2 * kvSize];
        float[][] attention = new float[rows][qSize];
        float[][] projected = new float[rows][hidden];
        float[][] gateUp = new float[rows][2 * inter];
        float[][] act = new float[rows][inter];
        for (int i = 0; i < layers.size(); i++) {
            Layer layer = layers.get(i);
            String prefix = "model.layers." + i + ".";
            // Attention block
            for (int r = 0; r < rows; r++) {
                rmsNorm(x[r], layer.inputLayernorm(), h[r]);
            }
            kernels.matmul(layer.qkvProj(), h, qkv, rows);
            CpuLora.apply(lora, prefix + "self_attn.q_proj", h, qkv, 0, rows);
            CpuLora.apply(lora, prefix + "self_attn.k_proj", h, qkv, qSize, rows);
            CpuLora.apply(lora, prefix + "self_attn.v_proj", h, qkv, qSize + kvSize, rows);
            int layerIndex = i;
            // Rotary embeddings and the cache first (a prompt's rows attend to each other's keys), then attention
            // for every (row, head); both spread over the cores like the matrix products.
            Kernels.parallelFor(rows, ROPE_GRAIN, (from, to) -> {
                for (int r = from; r < to; r++) {
                    rope(qkv[r], 0, heads, positions[r]);
                    rope(qkv[r], qSize, kvHeads, positions[r]);
                    for (int kv = 0; kv < kvHeads; kv++) {
                        cache.store(layerIndex, slots[r], kv, positions[r], qkv[r], qSize + kv * headDim,
                                qSize + kvSize + kv * headDim);
                    }
                }
            });
            Kernels.parallelFor(blockCount * heads, attentionGrain(span, blockCount, rows), (from, to) -> {
                float[][] scores = new float[blockRows][span];
                for (int t = from; t < to; t++) {
                    int block = t / heads;
                    attend(qkv, cache, layerIndex, slots, positions, blocks[2 * block], blocks[2 * block + 1],
                            t % heads, attention, scores);
                }
            });
            kernels.matmul(layer.oProj(), attention, projected, rows);
            CpuLora.apply(lora, prefix + "self_attn.o_proj", attention, projected, 0, rows);
            for (int r = 0; r < rows; r++) {
                add(x[r], projected[r]);
            }
            // MLP block
            for (int r = 0; r < rows; r++) {
                rmsNorm(x[r], layer.postAttentionLayernorm(), h[r]);
            }
            kernels.matmul(layer.gateUpProj(), h, gateUp, rows);
            CpuLora.apply(lora, prefix + "mlp.gate_proj", h, gateUp, 0, rows);
            CpuLora.apply(lora, prefix + "mlp.up_proj", h, gateUp, inter, rows);
            siluGate(gateUp, inter, act, rows);
            kernels.matmul(layer.downProj(), act, projected, rows);
            CpuLora.apply(lora, prefix + "mlp.down_proj", act, projected, 0, rows);
            for (int r = 0; r < rows; r++) {
                add(x[r], projected[r]);
            }
        }
        for (int s = 0; s < added.length; s++) {
            cache.advance(s, added[s]);
        }
        float[][] out = new float[rows][hidden];
        for (int r = 0; r < rows; r++) {
            rmsNorm(x[r], norm, out[r]);
        }
        return out;
    }

    // How the passes between the matrix products are split across the cores (the products split themselves, in
    // Kernels). Pieces big enough that handing one to a thread costs little beside it, small enough to even out.
    /** Rows per piece of the rotary-embedding and cache-store pass. */
    private static final int ROPE_GRAIN = 4;
    /** The SwiGLU gate runs over pieces of a row of about this many values, at least this many pieces a thread. */
    private static final int GATE_CHUNK = 512;
    private static final int GATE_GRAIN = 2;

    /**
     * (query block, head) tasks per piece of the attention pass: about 512 rows-times-positions of work each, so a
     * decode step's short attentions go many to a piece and a long prompt's one or a few.
     */
    private static int attentionGrain(int span, int blockCount, int rows) {
        return Math.max(1, 512 / span * blockCount / rows);
    }

    /** {@code act[r] = silu(gate) * up} of every row, in pieces of about {@link #GATE_CHUNK} values. */
    private static void siluGate(float[][] gateUp, int inter, float[][] act, int rows) {
        int chunks = Math.max(1, inter / GATE_CHUNK);
        Kernels.parallelFor(rows * chunks, GATE_GRAIN, (from, to) -> {
            for (int t = from; t < to; t++) {
                int r = t / chunks;
                int end = t % chunks == chunks - 1 ? inter : (t % chunks + 1) * (inter / chunks);
                Kernels.siluGate(gateUp[r], inter, act[r], t % chunks * (inter / chunks), end);
            }
        });
    }

    /** Adapters as the CPU path holds them, converted once per adapter. */
    private final Map<LoraAdapter, CpuLora> cpuAdapters = Collections.synchronizedMap(new IdentityHashMap<>());

    @Override
    public float[][] logits(float[][] inputs, int[] slots, Cache cache, List<LoraApplication> adapters,
                            boolean[] wanted) {
        List<CpuLora> lora = new ArrayList<>();
        for (LoraApplication application : adapters) {
            lora.add(cpuAdapters.computeIfAbsent(application.adapter(), CpuLora::of).scaled(application.rowScales()));
        }
        float[][] hidden = forward(inputs, slots, (CpuKvCache) cache, lora);
        int count = 0;
        for (boolean w : wanted) {
            count += w ? 1 : 0;
        }
        float[][] selected = new float[count][];
        int next = 0;
        for (int r = 0; r < hidden.length; r++) {
            if (wanted[r]) {
                selected[next++] = hidden[r];
            }
        }
        float[][] computed = logits(selected);
        float[][] out = new float[hidden.length][];
        next = 0;
        for (int r = 0; r < hidden.length; r++) {
            if (wanted[r]) {
                out[r] = computed[next++];
            }
        }
        return out;
    }

    /** The output head over final hidden states: {@code [rows][vocab]}, or {@code [rows][labels]} for a classifier. */
    public float[][] logits(float[][] hidden) {
        float[][] logits = new float[hidden.length][config.isSequenceClassifier() ? config.numLabels()
                : config.vocabSize()];
        kernels.matmul(lmHead, hidden, logits, hidden.length);
        return logits;
    }

    /** x * 1/sqrt(mean(x^2) + eps), then times the gain (as transformers' LlamaRMSNorm, in float32). */
    private void rmsNorm(float[] x, float[] gain, float[] out) {
        float sum = Kernels.dot(x, 0, x, 0, x.length);
        float inverse = 1f / (float) Math.sqrt(sum / x.length + (float) config.rmsNormEps());
        for (int i = 0; i < x.length; i++) {
            out[i] = gain[i] * (x[i] * inverse);
        }
    }

    /** Rotate-half RoPE in place on {@code count} heads starting at {@code offset}. */
    private void rope(float[] v, int offset, int count, int position) {
        int half = config.headDim() / 2;
        int table = position * half;
        for (int head = 0; head < count; head++) {
            int base = offset + head * config.headDim();
            for (int i = 0; i < half; i++) {
                float a = v[base + i];
                float b = v[base + half + i];
                float cos = ropeCos[table + i];
                float sin = ropeSin[table + i];
                v[base + i] = a * cos - b * sin;
                v[base + half + i] = b * cos + a * sin;
            }
        }
    }

    /** Query rows attended together: runs of consecutive positions of one slot (a prompt's rows), at most this many. */
    private static final int QUERY_BLOCK = 16;
    /** Keys (and values) read from memory once for a whole block of query rows, then from the core's own cache. */
    private static final int KEY_TILE = 32;

    /** The rows as blocks {first row, row count}, flattened: consecutive rows of one slot at consecutive positions. */
    private static int[] queryBlocks(int[] slots, int[] positions) {
        int[] blocks = new int[2 * slots.length];
        int count = 0;
        for (int r = 0; r < slots.length; r++) {
            int first = count == 0 ? -1 : blocks[2 * count - 2];
            int size = count == 0 ? 0 : blocks[2 * count - 1];
            if (count > 0 && size < QUERY_BLOCK && slots[r] == slots[first]
                    && positions[r] == positions[first] + size) {
                blocks[2 * count - 1]++;
            } else {
                blocks[2 * count] = r;
                blocks[2 * count + 1] = 1;
                count++;
            }
        }
        return Arrays.copyOf(blocks, 2 * count);
    }

    /**
     * Softmax attention of one query head for a block of rows of one slot at consecutive positions, over the slot's
     * cached positions (sliding window applied). Tile by tile of keys, every row of the block takes its scores (then
     * its weighted values) while the tile is in the core's cache: a prompt's rows read each key once per block rather
     * than once per row, which is what a long prompt's attention spends its time on. Every score and every output is
     * computed by the same operations in the same order as for a row alone (scores are independent sums, and
     * {@link Kernels#addWeightedSum} over consecutive pieces equals it over the whole range), so the tiling changes
     * no bit.
     */
    private void attend(float[][] qkv, CpuKvCache cache, int layer, int[] slots, int[] positions, int row0, int rows,
                        int head, float[][] out, float[][] scores) {
        int headDim = config.headDim();
        float scale = (float) (1.0 / Math.sqrt(headDim));
        int slot = slots[row0];
        int kv = head / config.groupSize();
        int q = head * headDim;
        int base = cache.offset(slot, kv, 0);
        Object keys = cache.keys(layer, slot);
        Object values = cache.values(layer, slot);
        int from = windowStart(positions[row0]);
        int to = positions[row0 + rows - 1];
        int tileSize = rows == 1 ? to - from + 1 : KEY_TILE;   // a row alone gains nothing from tiles
        for (int tile = from; tile <= to; tile += tileSize) {
            for (int r = 0; r < rows; r++) {
                int position = positions[row0 + r];
                int first = Math.max(tile, windowStart(position));
                int last = Math.min(position, tile + tileSize - 1);
                if (first > last) {
                    continue;
                }
                if (keys instanceof short[] bf16) {
                    Kernels.scores(qkv[row0 + r], q, bf16, base, headDim, first, last, scale, scores[r]);
                } else {
                    Kernels.scores(qkv[row0 + r], q, (float[]) keys, base, headDim, first, last, scale, scores[r]);
                }
            }
        }
        for (int r = 0; r < rows; r++) {
            int position = positions[row0 + r];
            int first = windowStart(position);
            float max = Float.NEGATIVE_INFINITY;
            for (int j = first; j <= position; j++) {
                max = Math.max(max, scores[r][j]);
            }
            float sum = Kernels.expShifted(scores[r], first, position, max);
            for (int j = first; j <= position; j++) {
                scores[r][j] = scores[r][j] / sum;
            }
            Arrays.fill(out[row0 + r], q, q + headDim, 0f);
        }
        for (int tile = from; tile <= to; tile += tileSize) {
            for (int r = 0; r < rows; r++) {
                int position = positions[row0 + r];
                int first = Math.max(tile, windowStart(position));
                int last = Math.min(position, tile + tileSize - 1);
                if (first > last) {
                    continue;
                }
                if (values instanceof short[] bf16) {
                    Kernels.addWeightedSum(scores[r], bf16, base, headDim, first, last, out[row0 + r], q);
                } else {
                    Kernels.addWeightedSum(scores[r], (float[]) values, base, headDim, first, last, out[row0 + r],
                            q);
                }
            }
        }
    }

    /** The first position a row at {@code position} attends to: 0, or the start of Mistral's sliding window. */
    private int windowStart(int position) {
        int window = config.slidingWindow();
        return window > 0 ? Math.max(0, position - window + 1) : 0;
    }

    private static void add(float[] x, float[] y) {
        for (int i = 0; i < x.length; i++) {
            x[i] += y[i];
        }
    }

    @Override
    public void close() {
        arena.close();
    }
}

package dev.expo.modeling.cpu;

import dev.expo.checkpoint.Checkpoint;
import dev.expo.checkpoint.DType;
import dev.expo.checkpoint.HfConfig;
import dev.expo.checkpoint.Tensor;
import dev.expo.checkpoint.TensorInfo;
import dev.expo.common.ExpoException;
import dev.expo.modeling.llama.LlamaConfig;
import dev.expo.modeling.llama.RopeScaling;

import java.lang.foreign.Arena;
import java.lang.foreign.SegmentAllocator;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The LLaMA / Mistral decoder for generation on the CPU, in Java: the same computation as
 * {@link dev.expo.modeling.llama.LlamaModel} (which it is tested against, with transformers' goldens), with the
 * matrix products done by {@link Kernels} straight from BF16 weights. Per generated token the work is a few
 * matrix-vector products per layer, where a call into PyTorch per small operation would cost more than the
 * arithmetic; streaming BF16 weights moves half the bytes of FP32.
 *
 * <p>Rows are positions: a forward call takes any mix of rows from any cache slots (a prompt's positions, or one
 * new token from each of several sequences), each at its slot's next position.
 */
public final class CpuDecoder implements dev.expo.modeling.Decoder {

    /** One layer: q/k/v and gate/up stacked as in the checkpoint's row order. */
    private record Layer(float[] inputLayernorm, Matrix qkvProj, Matrix oProj, float[] postAttentionLayernorm,
                         Matrix gateUpProj, Matrix downProj) {
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

    private CpuDecoder(LlamaConfig config, Arena arena, Matrix embedTokens, List<Layer> layers, float[] norm,
                       Matrix lmHead, DType kvCacheDtype) {
        this.config = config;
        this.arena = arena;
        this.embedTokens = embedTokens;
        this.layers = layers;
        this.norm = norm;
        this.lmHead = lmHead;
        this.kvCacheDtype = kvCacheDtype;
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

    /** Loads a checkpoint folder, with a float32 KV cache. */
    public static CpuDecoder load(Path dir) {
        return load(dir, DType.F32);
    }

    /** Loads a checkpoint folder; the caches it makes hold keys and values in {@code kvCacheDtype} (F32 or BF16). */
    public static CpuDecoder load(Path dir, DType kvCacheDtype) {
        CpuKvCache.supported(kvCacheDtype);   // refused at load, not at the first request
        LlamaConfig config = LlamaConfig.from(HfConfig.read(dir));
        if (config.headDim() % 2 != 0) {
            // Rotary embeddings rotate the two halves of each head (as transformers' rotate_half does).
            throw ExpoException.failedPrecondition("head_dim " + config.headDim() + " is odd; rotary embeddings "
                    + "need an even head size");
        }
        Arena arena = Arena.ofShared();
        try (Checkpoint weights = Checkpoint.open(dir)) {
            config.requireWeights(weights);
            // Every matrix, as stacked for the kernels; one block of (huge-page) memory holds them all.
            List<String[]> matrices = new ArrayList<>();
            matrices.add(new String[] {"model.embed_tokens.weight"});
            for (int i = 0; i < config.numLayers(); i++) {
                String p = "model.layers." + i + ".";
                matrices.add(new String[] {p + "self_attn.q_proj.weight", p + "self_attn.k_proj.weight",
                    p + "self_attn.v_proj.weight"});
                matrices.add(new String[] {p + "self_attn.o_proj.weight"});
                matrices.add(new String[] {p + "mlp.gate_proj.weight", p + "mlp.up_proj.weight"});
                matrices.add(new String[] {p + "mlp.down_proj.weight"});
            }
            if (weights.contains("lm_head.weight")) {
                matrices.add(new String[] {"lm_head.weight"});
            }
            long bytes = 0;
            for (String[] names : matrices) {
                for (String name : names) {
                    Tensor t = tensor(weights, name);
                    bytes += TensorInfo.elementCount(t.shape()) * (t.dtype() == DType.BF16 ? 2 : 4);
                }
                bytes += 64;   // alignment
            }
            SegmentAllocator memory = SegmentAllocator.slicingAllocator(HugePages.allocate(arena, bytes));
            List<Matrix> stacked = new ArrayList<>();
            for (String[] names : matrices) {
                stacked.add(Matrix.stack(memory, Arrays.stream(names).map(n -> tensor(weights, n))
                        .toArray(Tensor[]::new)));
            }
            Matrix embed = stacked.get(0);
            List<Layer> layers = new ArrayList<>();
            for (int i = 0; i < config.numLayers(); i++) {
                String p = "model.layers." + i + ".";
                layers.add(new Layer(tensor(weights, p + "input_layernorm.weight").toFloats(),
                        stacked.get(1 + 4 * i), stacked.get(2 + 4 * i),
                        tensor(weights, p + "post_attention_layernorm.weight").toFloats(),
                        stacked.get(3 + 4 * i), stacked.get(4 + 4 * i)));
            }
            float[] norm = tensor(weights, "model.norm.weight").toFloats();
            Matrix head = weights.contains("lm_head.weight") ? stacked.getLast() : embed;   // else tied
            return new CpuDecoder(config, arena, embed, layers, norm, head, kvCacheDtype);
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
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
        int blockRows = java.util.stream.IntStream.range(0, blockCount).map(b -> blocks[2 * b + 1]).max().orElse(1);
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
            Kernels.matmul(layer.qkvProj(), h, qkv, rows);
            CpuLora.apply(lora, prefix + "self_attn.q_proj", h, qkv, 0, rows);
            CpuLora.apply(lora, prefix + "self_attn.k_proj", h, qkv, qSize, rows);
            CpuLora.apply(lora, prefix + "self_attn.v_proj", h, qkv, qSize + kvSize, rows);
            int layerIndex = i;
            // Rotary embeddings and the cache first (a prompt's rows attend to each other's keys), then attention
            // for every (row, head); both spread over the cores like the matrix products.
            Kernels.parallelFor(rows, 4, (from, to) -> {
                for (int r = from; r < to; r++) {
                    rope(qkv[r], 0, heads, positions[r]);
                    rope(qkv[r], qSize, kvHeads, positions[r]);
                    for (int kv = 0; kv < kvHeads; kv++) {
                        cache.store(layerIndex, slots[r], kv, positions[r], qkv[r], qSize + kv * headDim,
                                qSize + kvSize + kv * headDim);
                    }
                }
            });
            Kernels.parallelFor(blockCount * heads, Math.max(1, 512 / span * blockCount / rows), (from, to) -> {
                float[][] scores = new float[blockRows][span];
                for (int t = from; t < to; t++) {
                    int block = t / heads;
                    attend(qkv, cache, layerIndex, slots, positions, blocks[2 * block], blocks[2 * block + 1],
                            t % heads, attention, scores);
                }
            });
            Kernels.matmul(layer.oProj(), attention, projected, rows);
            CpuLora.apply(lora, prefix + "self_attn.o_proj", attention, projected, 0, rows);
            for (int r = 0; r < rows; r++) {
                add(x[r], projected[r]);
            }
            // MLP block
            for (int r = 0; r < rows; r++) {
                rmsNorm(x[r], layer.postAttentionLayernorm(), h[r]);
            }
            Kernels.matmul(layer.gateUpProj(), h, gateUp, rows);
            CpuLora.apply(lora, prefix + "mlp.gate_proj", h, gateUp, 0, rows);
            CpuLora.apply(lora, prefix + "mlp.up_proj", h, gateUp, inter, rows);
            int chunks = Math.max(1, inter / 512);
            Kernels.parallelFor(rows * chunks, 2, (from, to) -> {
                for (int t = from; t < to; t++) {
                    int r = t / chunks;
                    int end = t % chunks == chunks - 1 ? inter : (t % chunks + 1) * (inter / chunks);
                    Kernels.siluGate(gateUp[r], inter, act[r], t % chunks * (inter / chunks), end);
                }
            });
            Kernels.matmul(layer.downProj(), act, projected, rows);
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

    /** Adapters as the CPU path holds them, converted once per adapter. */
    private final java.util.Map<dev.expo.modeling.lora.LoraAdapter, CpuLora> cpuAdapters =
            java.util.Collections.synchronizedMap(new java.util.IdentityHashMap<>());

    @Override
    public float[][] logits(float[][] inputs, int[] slots, Cache cache,
                            List<dev.expo.modeling.lora.LoraApplication> adapters, boolean[] wanted) {
        List<CpuLora> lora = new ArrayList<>();
        for (dev.expo.modeling.lora.LoraApplication application : adapters) {
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

    /** lm_head over final hidden states: {@code [rows][vocab]}. */
    public float[][] logits(float[][] hidden) {
        float[][] logits = new float[hidden.length][config.vocabSize()];
        Kernels.matmul(lmHead, hidden, logits, hidden.length);
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

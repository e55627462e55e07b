package dev.expo.benchmarks;

import dev.expo.checkpoint.DType;
import dev.expo.checkpoint.Dtypes;
import dev.expo.checkpoint.SafetensorsLayout;
import dev.expo.checkpoint.SafetensorsWriter;
import dev.expo.checkpoint.ShardPlan;
import dev.expo.checkpoint.TensorInfo;
import dev.expo.checkpoint.TensorSpec;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Writes a synthetic LLaMA-shaped BF16 "SFT" and "aligned" pair of a chosen size, sharded as Hugging Face shards
 * (greedy, in state-dict order), streaming: memory stays small whatever the size. The aligned model is the base
 * plus a small deterministic delta, so extrapolation has real work to do.
 */
public final class SyntheticLlama {

    /** A LLaMA geometry; the layer count is chosen to reach the target size. */
    public record Shape(int vocab, int hidden, int intermediate, int layers, int heads) {

        public Shape(int vocab, int hidden, int intermediate, int layers) {
            this(vocab, hidden, intermediate, layers, 16);
        }

        public long parameters() {
            long perLayer = 4L * hidden * hidden + 3L * hidden * intermediate + 2L * hidden;
            return 2L * vocab * hidden + hidden + layers * perLayer;
        }

        /** The 1B-class geometry (hidden 2048), as many layers as fit in {@code bytes} of BF16. */
        public static Shape ofBytes(long bytes) {
            Shape one = new Shape(32000, 2048, 5632, 1);
            long perLayer = (one.parameters() - new Shape(32000, 2048, 5632, 0).parameters()) * 2;
            long fixed = new Shape(32000, 2048, 5632, 0).parameters() * 2;
            int layers = (int) Math.max(1, Math.round((bytes - fixed) / (double) perLayer));
            return new Shape(32000, 2048, 5632, layers);
        }

        List<TensorSpec> tensors() {
            List<TensorSpec> specs = new ArrayList<>();
            specs.add(new TensorSpec("model.embed_tokens.weight", DType.BF16, new long[] {vocab, hidden}));
            for (int i = 0; i < layers; i++) {
                String p = "model.layers." + i + ".";
                specs.add(new TensorSpec(p + "self_attn.q_proj.weight", DType.BF16, new long[] {hidden, hidden}));
                specs.add(new TensorSpec(p + "self_attn.k_proj.weight", DType.BF16, new long[] {hidden, hidden}));
                specs.add(new TensorSpec(p + "self_attn.v_proj.weight", DType.BF16, new long[] {hidden, hidden}));
                specs.add(new TensorSpec(p + "self_attn.o_proj.weight", DType.BF16, new long[] {hidden, hidden}));
                specs.add(new TensorSpec(p + "mlp.gate_proj.weight", DType.BF16, new long[] {intermediate, hidden}));
                specs.add(new TensorSpec(p + "mlp.up_proj.weight", DType.BF16, new long[] {intermediate, hidden}));
                specs.add(new TensorSpec(p + "mlp.down_proj.weight", DType.BF16, new long[] {hidden, intermediate}));
                specs.add(new TensorSpec(p + "input_layernorm.weight", DType.BF16, new long[] {hidden}));
                specs.add(new TensorSpec(p + "post_attention_layernorm.weight", DType.BF16, new long[] {hidden}));
            }
            specs.add(new TensorSpec("model.norm.weight", DType.BF16, new long[] {hidden}));
            specs.add(new TensorSpec("lm_head.weight", DType.BF16, new long[] {vocab, hidden}));
            return specs;
        }

        String config() {
            return """
                    {
                      "architectures": ["LlamaForCausalLM"],
                      "model_type": "llama",
                      "hidden_size": %d,
                      "intermediate_size": %d,
                      "num_attention_heads": %d,
                      "num_key_value_heads": %d,
                      "num_hidden_layers": %d,
                      "vocab_size": %d,
                      "max_position_embeddings": 2048,
                      "bos_token_id": 1,
                      "eos_token_id": 2,
                      "rms_norm_eps": 1e-05,
                      "rope_theta": 10000.0,
                      "tie_word_embeddings": false,
                      "torch_dtype": "bfloat16"
                    }
                    """.formatted(hidden, intermediate, heads, heads, layers, vocab);
        }
    }

    private static final ValueLayout.OfShort SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final int CHUNK = 1 << 20;

    private SyntheticLlama() {
    }

    /** Writes {@code baseDir} and {@code alignedDir} (both complete model folders). */
    public static void writePair(Shape shape, long maxShardBytes, Path baseDir, Path alignedDir) throws IOException {
        ShardPlan plan = ShardPlan.greedy(shape.tensors(), maxShardBytes);
        write(plan, shape, baseDir, 0f);
        write(plan, shape, alignedDir, 0.03f);
    }

    /** One model (the "base" of a pair). */
    public static void writeModel(Shape shape, long maxShardBytes, Path dir) throws IOException {
        write(ShardPlan.greedy(shape.tensors(), maxShardBytes), shape, dir, 0f);
    }

    private static void write(ShardPlan plan, Shape shape, Path dir, float delta) throws IOException {
        Files.createDirectories(dir);
        Files.writeString(dir.resolve("config.json"), shape.config());
        plan.writeIndex(dir);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buffer = arena.allocate(2L * CHUNK);
            for (ShardPlan.Shard shard : plan.shards()) {
                SafetensorsLayout layout = shard.layout();
                try (FileChannel channel = FileChannel.open(dir.resolve(shard.fileName()), StandardOpenOption.CREATE,
                        StandardOpenOption.TRUNCATE_EXISTING, StandardOpenOption.WRITE)) {
                    SafetensorsWriter.writeFully(channel, layout.header(), 0);
                    for (TensorInfo tensor : layout.tensors()) {
                        // Same seed for both models: the aligned one is the base plus delta * noise.
                        SplittableRandom values = new SplittableRandom(tensor.name().hashCode());
                        SplittableRandom noise = new SplittableRandom(tensor.name().hashCode() * 31L + 7);
                        long position = layout.position(tensor.name());
                        for (long done = 0; done < tensor.elementCount(); done += CHUNK) {
                            int n = (int) Math.min(CHUNK, tensor.elementCount() - done);
                            for (int i = 0; i < n; i++) {
                                float w = uniform(values) * 0.05f;
                                if (delta != 0) {
                                    w += delta * 0.05f * uniform(noise);
                                }
                                buffer.setAtIndex(SHORT, i, Dtypes.floatToBf16(w));
                            }
                            SafetensorsWriter.writeFully(channel, buffer.asSlice(0, 2L * n).asByteBuffer(),
                                    position + 2 * done);
                        }
                    }
                }
            }
        }
    }

    /** Uniform in [-1, 1): cheap, and enough for weights whose values do not matter to the timing. */
    private static float uniform(SplittableRandom random) {
        return (random.nextInt() >> 8) * 0x1p-23f;
    }
}

package dev.expo.modeling.cpu;

import ai.djl.ndarray.NDManager;
import dev.expo.checkpoint.Checkpoint;
import dev.expo.checkpoint.DType;
import dev.expo.checkpoint.SafetensorsWriter;
import dev.expo.checkpoint.Tensor;
import dev.expo.checkpoint.TensorInfo;
import dev.expo.common.ExpoException;
import dev.expo.modeling.Decoder;
import dev.expo.modeling.DjlDecoder;
import dev.expo.modeling.ModelOptions;
import dev.expo.modeling.llama.LlamaModel;
import dev.expo.modeling.sampling.TokenSampler;
import org.assertj.core.api.ThrowableAssert.ThrowingCallable;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Sizes that are not multiples of the vector width (hidden 20, intermediate 36, head size 4, one key/value head for
 * five query heads, tied embeddings) and Llama 3.1's rope_scaling: the CPU decoder computes what the DJL decoder does,
 * which is tested against transformers.
 */
class OddShapesTest {

    private static final int[] PROMPT = {1, 17, 4, 33, 50, 9, 2, 11, 40};

    @Test
    void oddSizedModelMatchesTheDjlDecoder(@TempDir Path dir) throws IOException {
        writeModel(dir, 20, 36, 5, 1, 4, """
                , "tie_word_embeddings": true,
                 "rope_scaling": {"rope_type": "llama3", "factor": 4.0, "low_freq_factor": 1.0,
                                  "high_freq_factor": 4.0, "original_max_position_embeddings": 32}""");
        float[] scaledFirst = cpuMatchesDjl(dir);
        // The scaling is applied: without it the same weights give other logits.
        String config = Files.readString(dir.resolve("config.json"));
        String head = config.substring(0, config.indexOf("\"rope_scaling\"")).stripTrailing();
        Files.writeString(dir.resolve("config.json"), head.substring(0, head.length() - 1) + "}");
        try (Decoder unscaled = CpuDecoder.load(dir)) {
            assertThat(greedy(unscaled, PROMPT, 1).getFirst()).isNotEqualTo(scaledFirst);
        }
    }

    /** An explicit head_dim whose heads do not add up to the hidden size (as Mistral-Nemo's): q is 24 wide, not 20. */
    @Test
    void headsWiderThanTheHiddenSizeMatchTheDjlDecoder(@TempDir Path dir) throws IOException {
        writeModel(dir, 20, 36, 4, 2, 6, ", \"head_dim\": 6");
        cpuMatchesDjl(dir);
    }

    /** Tensors whose shapes disagree with config.json are refused by both decoders, naming the tensor. */
    @Test
    void tensorsThatDisagreeWithTheConfigAreRefused(@TempDir Path dir) throws IOException {
        writeModel(dir, 20, 36, 5, 1, 4, "");
        String config = Files.readString(dir.resolve("config.json"));
        Files.writeString(dir.resolve("config.json"), config.replace("\"intermediate_size\": 36",
                "\"intermediate_size\": 72"));
        assertRefused(dir, "tensor model.layers.0.mlp.gate_proj.weight has shape [36, 20]", "makes it [72, 20]");
        Files.writeString(dir.resolve("config.json"), config.replace("\"num_key_value_heads\": 1",
                "\"num_key_value_heads\": 5"));
        assertRefused(dir, "tensor model.layers.0.self_attn.k_proj.weight has shape [4, 20]", "makes it [20, 20]");
        Files.writeString(dir.resolve("config.json"), config.replace("\"num_key_value_heads\": 1",
                "\"num_key_value_heads\": 2"));
        assertRefused(dir, "num_attention_heads 5 must be a multiple of num_key_value_heads 2");
        Files.writeString(dir.resolve("config.json"), config.replace("\"num_hidden_layers\": 2,", ""));
        assertRefused(dir, "needs num_hidden_layers");
        // A weight stored as integers (same bytes per element as BF16) is refused by name, not read as floats.
        Files.writeString(dir.resolve("config.json"), config);
        List<Tensor> tensors = new ArrayList<>();
        try (Checkpoint weights = Checkpoint.open(dir)) {
            for (TensorInfo info : weights.tensors()) {
                Tensor t = weights.tensor(info.name());
                DType dtype = info.name().endsWith("layers.1.mlp.down_proj.weight") ? DType.I16 : info.dtype();
                byte[] bytes = t.bytes().toArray(ValueLayout.JAVA_BYTE);
                tensors.add(new Tensor(new TensorInfo(info.name(), dtype, info.shape(), 0, bytes.length),
                        MemorySegment.ofArray(bytes)));
            }
        }
        SafetensorsWriter.write(dir.resolve("model.safetensors"), tensors);
        assertRefused(dir, "tensor model.layers.1.mlp.down_proj.weight has dtype I16");
    }

    private static void assertRefused(Path dir, String... message) {
        try (NDManager manager = NDManager.newBaseManager()) {
            List<ThrowingCallable> loads = List.of(() -> CpuDecoder.load(dir).close(),
                    () -> LlamaModel.load(dir, manager, ModelOptions.cpu()));
            for (ThrowingCallable load : loads) {
                assertThatThrownBy(load).isInstanceOfSatisfying(ExpoException.class, e -> {
                    assertThat(e.kind()).isEqualTo(ExpoException.Kind.INVALID_ARGUMENT);
                    assertThat(e.getMessage()).contains(message);
                });
            }
        }
    }

    private static void writeModel(Path dir, int hidden, int inter, int heads, int kvHeads, int headDim,
                                   String extraConfig) throws IOException {
        int vocab = 51;
        Random random = new Random(21);
        boolean tied = extraConfig.contains("tie_word_embeddings\": true");
        List<Tensor> tensors = new ArrayList<>();
        tensors.add(bf16("model.embed_tokens.weight", random, vocab, hidden));
        for (int i = 0; i < 2; i++) {
            String p = "model.layers." + i + ".";
            tensors.add(bf16(p + "self_attn.q_proj.weight", random, heads * headDim, hidden));
            tensors.add(bf16(p + "self_attn.k_proj.weight", random, kvHeads * headDim, hidden));
            tensors.add(bf16(p + "self_attn.v_proj.weight", random, kvHeads * headDim, hidden));
            tensors.add(bf16(p + "self_attn.o_proj.weight", random, hidden, heads * headDim));
            tensors.add(bf16(p + "mlp.gate_proj.weight", random, inter, hidden));
            tensors.add(bf16(p + "mlp.up_proj.weight", random, inter, hidden));
            tensors.add(bf16(p + "mlp.down_proj.weight", random, hidden, inter));
            tensors.add(bf16(p + "input_layernorm.weight", random, hidden));
            tensors.add(bf16(p + "post_attention_layernorm.weight", random, hidden));
        }
        tensors.add(bf16("model.norm.weight", random, hidden));
        if (!tied) {
            tensors.add(bf16("lm_head.weight", random, vocab, hidden));
        }
        SafetensorsWriter.write(dir.resolve("model.safetensors"), tensors);
        Files.writeString(dir.resolve("config.json"), """
                {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": %d,
                 "intermediate_size": %d, "num_attention_heads": %d, "num_key_value_heads": %d,
                 "num_hidden_layers": 2, "vocab_size": 51, "max_position_embeddings": 64, "rms_norm_eps": 1e-6,
                 "rope_theta": 10000.0, "torch_dtype": "bfloat16"%s}
                """.formatted(hidden, inter, heads, kvHeads, extraConfig));
    }

    /** Greedy decoding on both decoders: every step's logits within 1e-4, the same tokens; the CPU's first logits. */
    private static float[] cpuMatchesDjl(Path dir) {
        try (NDManager manager = NDManager.newBaseManager();
             Decoder cpu = CpuDecoder.load(dir);
             Decoder djl = new DjlDecoder(LlamaModel.load(dir, manager, ModelOptions.cpu()))) {
            List<float[]> expected = greedy(djl, PROMPT, 8);
            List<float[]> actual = greedy(cpu, PROMPT, 8);
            for (int step = 0; step < expected.size(); step++) {
                float[] e = expected.get(step);
                float[] a = actual.get(step);
                for (int v = 0; v < e.length; v++) {
                    assertThat((double) a[v]).as("step " + step + " token " + v).isCloseTo(e[v],
                            org.assertj.core.data.Offset.offset(1e-4));
                }
                assertThat(TokenSampler.argmax(a)).isEqualTo(TokenSampler.argmax(e));
            }
            return actual.getFirst();
        }
    }

    /** Prefills the prompt, then decodes greedily; the logits of every step. */
    private static List<float[]> greedy(Decoder decoder, int[] prompt, int steps) {
        Decoder.Cache cache = decoder.newCache(1);
        float[][] rows = new float[prompt.length][];
        for (int i = 0; i < prompt.length; i++) {
            rows[i] = decoder.embed(prompt[i]);
        }
        boolean[] last = new boolean[prompt.length];
        last[prompt.length - 1] = true;
        List<float[]> out = new ArrayList<>();
        out.add(decoder.logits(rows, new int[prompt.length], cache, List.of(), last)[prompt.length - 1]);
        for (int step = 1; step < steps; step++) {
            int token = TokenSampler.argmax(out.getLast());
            out.add(decoder.logits(new float[][] {decoder.embed(token)}, new int[1], cache, List.of(),
                    new boolean[] {true})[0]);
        }
        return out;
    }

    private static Tensor bf16(String name, Random random, int... shape) {
        long[] dims = new long[shape.length];
        int count = 1;
        for (int i = 0; i < shape.length; i++) {
            dims[i] = shape[i];
            count *= shape[i];
        }
        float[] values = new float[count];
        for (int i = 0; i < count; i++) {
            values[i] = (float) (random.nextGaussian() * (shape.length == 1 ? 0.1 : 0.3) + (shape.length == 1 ? 1 : 0));
        }
        return Tensor.fromFloats(name, DType.BF16, dims, values);
    }
}

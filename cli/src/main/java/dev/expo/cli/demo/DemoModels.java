package dev.expo.cli.demo;

import dev.expo.checkpoint.DType;
import dev.expo.checkpoint.SafetensorsWriter;
import dev.expo.checkpoint.Tensor;
import dev.expo.common.store.ModelStore;
import dev.expo.modeling.clip.RandomClipVision;
import dev.expo.modeling.multimodal.MultimodalManifest;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * The demo models a fresh store is seeded with, made deterministically (fixed seeds) by this code: a tiny LLaMA
 * "SFT" model and an "aligned" one that differs from it by a small random delta on every tensor, both in BF16 like
 * real checkpoints, with a byte-level BPE tokenizer and zephyr's chat template; a tiny CLIP vision tower; and a
 * multimodal manifest putting the tower, through a projector, in front of the SFT model; and a reward model (the
 * SFT body with a score head) to judge evaluations. Small enough to run in
 * milliseconds; shaped like the real things. Their weights are random: the outputs are gibberish, the plumbing is
 * real.
 */
public final class DemoModels {

    public static final String SFT = "demo-sft";
    public static final String ALIGNED = "demo-dpo";
    public static final String VISION = "demo-clip";
    public static final String MULTIMODAL = "demo-vlm";
    public static final String REWARD = "demo-rm";
    private static final int VOCAB = 384;
    private static final int HIDDEN = 64;
    private static final int INTERMEDIATE = 176;
    private static final int LAYERS = 6;
    private static final int HEADS = 4;
    private static final String[] TOKENIZER_FILES = {"tokenizer.json", "tokenizer_config.json",
        "special_tokens_map.json"};

    private DemoModels() {
    }

    /** Writes the demo models that are missing; returns the names written. */
    public static List<String> seed(ModelStore store) {
        List<String> written = new ArrayList<>();
        Map<String, float[]> sft = sftWeights();
        if (!store.exists(SFT)) {
            write(store, SFT, sft);
            written.add(SFT);
        }
        if (!store.exists(ALIGNED)) {
            write(store, ALIGNED, aligned(sft));
            written.add(ALIGNED);
        }
        if (!store.exists(VISION)) {
            writeVisionTower(store);
            written.add(VISION);
        }
        if (!store.exists(MULTIMODAL)) {
            writeMultimodal(store);
            written.add(MULTIMODAL);
        }
        if (!store.exists(REWARD)) {
            write(store, REWARD, rewardWeights(sft), CONFIG.replace("LlamaForCausalLM", "LlamaForSequenceClassification")
                    .replace("  \"vocab_size\"", "  \"num_labels\": 1,\n  \"vocab_size\""));
            written.add(REWARD);
        }
        return written;
    }

    // A tiny CLIP vision tower (32x32 images, 8x8 patches: 16 patch tokens) and a manifest putting it, through a
    // linear projector stored beside the manifest, in front of the demo language model.
    private static final int CLIP_HIDDEN = 64;
    private static final int CLIP_INTERMEDIATE = 128;
    private static final int CLIP_LAYERS = 2;
    private static final int CLIP_PATCH = 8;
    private static final int CLIP_IMAGE = 32;

    private static void writeVisionTower(ModelStore store) {
        publish(store, VISION, staging -> RandomClipVision.write(staging, new RandomClipVision.Shape(CLIP_HIDDEN,
                CLIP_INTERMEDIATE, CLIP_LAYERS, 4, CLIP_IMAGE, CLIP_PATCH), 20240503L));
    }

    private static void writeMultimodal(ModelStore store) {
        SplittableRandom random = new SplittableRandom(20240504L);
        publish(store, MULTIMODAL, staging -> {
            SafetensorsWriter.write(staging.resolve("projector.safetensors"), List.of(
                    Tensor.fromFloats("weight", DType.F32, new long[] {HIDDEN, CLIP_HIDDEN},
                            gaussian(random, HIDDEN * CLIP_HIDDEN, 0.125f)),
                    Tensor.fromFloats("bias", DType.F32, new long[] {HIDDEN}, gaussian(random, HIDDEN, 0.05f))));
            new MultimodalManifest(SFT, VISION, "projector.safetensors", null, -2, true).write(staging);
        });
    }

    private interface StagedWrite {
        void into(Path staging) throws IOException;
    }

    private static void publish(ModelStore store, String name, StagedWrite write) {
        Path staging = store.newStagingDir(name);
        try {
            write.into(staging);
            ModelStore.fsyncTree(staging);
            store.publish(staging, name, false);
        } catch (IOException e) {
            ModelStore.deleteTree(staging);
            throw new UncheckedIOException("cannot write demo model " + name, e);
        }
    }

    /** name -> values, in the order a LLaMA state dict lists them. */
    private static Map<String, float[]> sftWeights() {
        SplittableRandom random = new SplittableRandom(20240501L);
        Map<String, float[]> weights = new LinkedHashMap<>();
        weights.put("model.embed_tokens.weight", gaussian(random, VOCAB * HIDDEN, 0.3f));
        for (int layer = 0; layer < LAYERS; layer++) {
            String p = "model.layers." + layer + ".";
            weights.put(p + "input_layernorm.weight", norm(random));
            weights.put(p + "self_attn.q_proj.weight", gaussian(random, HIDDEN * HIDDEN, 0.12f));
            weights.put(p + "self_attn.k_proj.weight", gaussian(random, HIDDEN * HIDDEN, 0.12f));
            weights.put(p + "self_attn.v_proj.weight", gaussian(random, HIDDEN * HIDDEN, 0.06f));
            weights.put(p + "self_attn.o_proj.weight", gaussian(random, HIDDEN * HIDDEN, 0.06f));
            weights.put(p + "post_attention_layernorm.weight", norm(random));
            weights.put(p + "mlp.gate_proj.weight", gaussian(random, INTERMEDIATE * HIDDEN, 0.06f));
            weights.put(p + "mlp.up_proj.weight", gaussian(random, INTERMEDIATE * HIDDEN, 0.06f));
            weights.put(p + "mlp.down_proj.weight", gaussian(random, HIDDEN * INTERMEDIATE, 0.06f));
        }
        weights.put("model.norm.weight", norm(random));
        weights.put("lm_head.weight", gaussian(random, VOCAB * HIDDEN, 0.3f));
        return weights;
    }

    /**
     * The demo reward model: the SFT model's body with a random one-label score head instead of its LM head. Its
     * config sets no pad_token_id, so transformers scores the last token: the reward depends on the whole response.
     */
    private static Map<String, float[]> rewardWeights(Map<String, float[]> sft) {
        SplittableRandom random = new SplittableRandom(20240505L);
        Map<String, float[]> weights = new LinkedHashMap<>(sft);
        weights.remove("lm_head.weight");
        weights.put("score.weight", gaussian(random, HIDDEN, 0.5f));
        return weights;
    }

    /** The "aligned" model: every tensor plus 3% of its RMS times Gaussian noise, as the fixtures' DPO model. */
    private static Map<String, float[]> aligned(Map<String, float[]> sft) {
        SplittableRandom random = new SplittableRandom(20240502L);
        Map<String, float[]> aligned = new LinkedHashMap<>();
        sft.forEach((name, values) -> {
            double sum = 0;
            for (float v : values) {
                sum += v * v;
            }
            float scale = (float) (0.03 * Math.sqrt(sum / values.length));
            float[] shifted = values.clone();
            for (int i = 0; i < shifted.length; i++) {
                shifted[i] += scale * (float) random.nextGaussian();
            }
            aligned.put(name, shifted);
        });
        return aligned;
    }

    private static float[] gaussian(SplittableRandom random, int count, float std) {
        float[] values = new float[count];
        for (int i = 0; i < count; i++) {
            values[i] = std * (float) random.nextGaussian();
        }
        return values;
    }

    private static float[] norm(SplittableRandom random) {
        float[] values = new float[HIDDEN];
        for (int i = 0; i < HIDDEN; i++) {
            values[i] = 1f + 0.25f * (float) random.nextGaussian();
        }
        return values;
    }

    private static long[] shapeOf(String name) {
        if (name.endsWith("layernorm.weight") || name.equals("model.norm.weight")) {
            return new long[] {HIDDEN};
        }
        if (name.equals("score.weight")) {
            return new long[] {1, HIDDEN};
        }
        if (name.equals("model.embed_tokens.weight") || name.equals("lm_head.weight")) {
            return new long[] {VOCAB, HIDDEN};
        }
        if (name.contains("gate_proj") || name.contains("up_proj")) {
            return new long[] {INTERMEDIATE, HIDDEN};
        }
        if (name.contains("down_proj")) {
            return new long[] {HIDDEN, INTERMEDIATE};
        }
        return new long[] {HIDDEN, HIDDEN};
    }

    private static void write(ModelStore store, String name, Map<String, float[]> weights) {
        write(store, name, weights, CONFIG);
    }

    private static void write(ModelStore store, String name, Map<String, float[]> weights, String config) {
        List<Tensor> tensors = new ArrayList<>();
        weights.forEach((tensor, values) -> tensors.add(Tensor.fromFloats(tensor, DType.BF16, shapeOf(tensor),
                values)));
        publish(store, name, staging -> {
            SafetensorsWriter.write(staging.resolve("model.safetensors"), tensors);
            Files.writeString(staging.resolve("config.json"), config);
            Files.writeString(staging.resolve("generation_config.json"), GENERATION_CONFIG);
            for (String file : TOKENIZER_FILES) {
                try (InputStream in = DemoModels.class.getResourceAsStream("tokenizer/" + file)) {
                    Files.copy(in, staging.resolve(file));
                }
            }
        });
    }

    private static final String CONFIG = """
            {
              "architectures": [
                "LlamaForCausalLM"
              ],
              "attention_bias": false,
              "attention_dropout": 0.0,
              "bos_token_id": 1,
              "eos_token_id": 2,
              "hidden_act": "silu",
              "hidden_size": %d,
              "initializer_range": 0.02,
              "intermediate_size": %d,
              "max_position_embeddings": 512,
              "mlp_bias": false,
              "model_type": "llama",
              "num_attention_heads": %d,
              "num_hidden_layers": %d,
              "num_key_value_heads": %d,
              "pretraining_tp": 1,
              "rms_norm_eps": 1e-06,
              "rope_scaling": null,
              "rope_theta": 10000.0,
              "tie_word_embeddings": false,
              "torch_dtype": "bfloat16",
              "use_cache": true,
              "vocab_size": %d
            }
            """.formatted(HIDDEN, INTERMEDIATE, HEADS, LAYERS, HEADS, VOCAB);

    private static final String GENERATION_CONFIG = """
            {
              "bos_token_id": 1,
              "eos_token_id": 2
            }
            """;
}

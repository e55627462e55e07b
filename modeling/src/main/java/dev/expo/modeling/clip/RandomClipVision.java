package dev.expo.modeling.clip;

import dev.expo.checkpoint.DType;
import dev.expo.checkpoint.SafetensorsWriter;
import dev.expo.checkpoint.Tensor;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * Writes a CLIP vision tower with random weights (BF16, as real checkpoints) in transformers' layout: config.json,
 * preprocessor_config.json (OpenAI's mean and std, bicubic) and model.safetensors. For the demo models and the
 * benchmarks: shaped like the real thing, deterministic from the seed, its outputs meaningless.
 */
public final class RandomClipVision {

    /** A tower's geometry: {@code image / patch} squared patch tokens. */
    public record Shape(int hidden, int intermediate, int layers, int heads, int image, int patch) {
    }

    private RandomClipVision() {
    }

    public static void write(Path dir, Shape shape, long seed) throws IOException {
        SplittableRandom random = new SplittableRandom(seed);
        int h = shape.hidden();
        List<Tensor> tensors = new ArrayList<>();
        String p = "vision_model.";
        int positions = (shape.image() / shape.patch()) * (shape.image() / shape.patch()) + 1;
        tensors.add(bf16(p + "embeddings.class_embedding", gaussian(random, h, 0.5f), h));
        tensors.add(bf16(p + "embeddings.patch_embedding.weight", gaussian(random,
                h * 3 * shape.patch() * shape.patch(), 0.05f), h, 3, shape.patch(), shape.patch()));
        tensors.add(bf16(p + "embeddings.position_embedding.weight", gaussian(random, positions * h, 0.5f),
                positions, h));
        addLayerNorm(tensors, random, p + "pre_layrnorm", h);
        for (int i = 0; i < shape.layers(); i++) {
            String l = p + "encoder.layers." + i + ".";
            for (String projection : new String[] {"q_proj", "k_proj", "v_proj", "out_proj"}) {
                tensors.add(bf16(l + "self_attn." + projection + ".weight", gaussian(random, h * h, 0.1f), h, h));
                tensors.add(bf16(l + "self_attn." + projection + ".bias", gaussian(random, h, 0.05f), h));
            }
            addLayerNorm(tensors, random, l + "layer_norm1", h);
            int m = shape.intermediate();
            tensors.add(bf16(l + "mlp.fc1.weight", gaussian(random, m * h, 0.1f), m, h));
            tensors.add(bf16(l + "mlp.fc1.bias", gaussian(random, m, 0.05f), m));
            tensors.add(bf16(l + "mlp.fc2.weight", gaussian(random, h * m, 0.1f), h, m));
            tensors.add(bf16(l + "mlp.fc2.bias", gaussian(random, h, 0.05f), h));
            addLayerNorm(tensors, random, l + "layer_norm2", h);
        }
        addLayerNorm(tensors, random, p + "post_layernorm", h);
        Files.createDirectories(dir);
        SafetensorsWriter.write(dir.resolve("model.safetensors"), tensors);
        Files.writeString(dir.resolve("config.json"), String.format(Locale.ROOT, """
                {
                  "architectures": ["CLIPVisionModel"],
                  "model_type": "clip_vision_model",
                  "hidden_act": "quick_gelu",
                  "hidden_size": %d,
                  "intermediate_size": %d,
                  "image_size": %d,
                  "patch_size": %d,
                  "num_channels": 3,
                  "num_attention_heads": %d,
                  "num_hidden_layers": %d,
                  "layer_norm_eps": 1e-05,
                  "projection_dim": %d,
                  "torch_dtype": "bfloat16"
                }
                """, h, shape.intermediate(), shape.image(), shape.patch(), shape.heads(), shape.layers(), h));
        Files.writeString(dir.resolve("preprocessor_config.json"), String.format(Locale.ROOT, """
                {
                  "crop_size": %d,
                  "do_center_crop": true,
                  "do_normalize": true,
                  "do_resize": true,
                  "feature_extractor_type": "CLIPFeatureExtractor",
                  "image_mean": [0.48145466, 0.4578275, 0.40821073],
                  "image_std": [0.26862954, 0.26130258, 0.27577711],
                  "resample": 3,
                  "size": %d
                }
                """, shape.image(), shape.image()));
    }

    private static void addLayerNorm(List<Tensor> tensors, SplittableRandom random, String name, int hidden) {
        float[] gain = new float[hidden];
        for (int i = 0; i < hidden; i++) {
            gain[i] = 1f + 0.2f * (float) random.nextGaussian();
        }
        tensors.add(bf16(name + ".weight", gain, hidden));
        tensors.add(bf16(name + ".bias", gaussian(random, hidden, 0.05f), hidden));
    }

    private static float[] gaussian(SplittableRandom random, int count, float std) {
        float[] values = new float[count];
        for (int i = 0; i < count; i++) {
            values[i] = std * (float) random.nextGaussian();
        }
        return values;
    }

    private static Tensor bf16(String name, float[] values, long... shape) {
        return Tensor.fromFloats(name, DType.BF16, shape, values);
    }
}

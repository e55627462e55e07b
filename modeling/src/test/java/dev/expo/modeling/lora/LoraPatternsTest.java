package dev.expo.modeling.lora;

import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.expo.checkpoint.DType;
import dev.expo.checkpoint.SafetensorsFile;
import dev.expo.checkpoint.SafetensorsWriter;
import dev.expo.checkpoint.Tensor;
import dev.expo.checkpoint.TensorInfo;
import dev.expo.common.ExpoException;
import dev.expo.modeling.Goldens;
import dev.expo.modeling.ModelOptions;
import dev.expo.modeling.Decoder;
import dev.expo.modeling.DjlDecoder;
import dev.expo.modeling.cpu.CpuDecoder;
import dev.expo.modeling.llama.LlamaModel;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.UnaryOperator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * PEFT's rank_pattern and alpha_pattern: an adapter using them computes what an adapter without them computes when its
 * B matrices carry the per-module scaling instead (merged, and unmerged on both decoders).
 */
class LoraPatternsTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String Q0 = "model.layers.0.self_attn.q_proj";

    @TempDir
    Path dir;

    /** The fp32 fixture adapter (r 4, alpha 8 on q_proj and v_proj) rewritten: config edit, and tensors by key. */
    private Path adapter(String name, UnaryOperator<ObjectNode> config, java.util.function.BiFunction<String,
            float[], float[]> values, java.util.function.BiFunction<String, long[], long[]> shapes) throws Exception {
        Path fixture = Goldens.path("tiny-llama-lora/fp32");
        Path out = Files.createDirectories(dir.resolve(name));
        ObjectNode json = (ObjectNode) JSON.readTree(fixture.resolve("adapter_config.json").toFile());
        JSON.writeValue(out.resolve("adapter_config.json").toFile(), config.apply(json));
        List<Tensor> tensors = new ArrayList<>();
        try (SafetensorsFile weights = SafetensorsFile.open(fixture.resolve("adapter_model.safetensors"))) {
            for (TensorInfo t : weights.tensors()) {
                tensors.add(Tensor.fromFloats(t.name(), DType.F32, shapes.apply(t.name(), t.shape()),
                        values.apply(t.name(), weights.tensor(t.name()).toFloats())));
            }
        }
        SafetensorsWriter.write(out.resolve("adapter_model.safetensors"), tensors);
        return out;
    }

    /** Layer 0's q_proj padded from rank 4 to 8 with zeros: the same product B A. */
    private static float[] padQ0(String key, float[] v) {
        if (key.contains(Q0 + ".lora_A")) {   // [4, in] -> [8, in]
            return Arrays.copyOf(v, v.length * 2);
        }
        if (key.contains(Q0 + ".lora_B")) {   // [out, 4] -> [out, 8]
            int out = v.length / 4;
            float[] padded = new float[out * 8];
            for (int i = 0; i < out; i++) {
                System.arraycopy(v, i * 4, padded, i * 8, 4);
            }
            return padded;
        }
        return v;
    }

    private static long[] padQ0Shape(String key, long[] shape) {
        if (key.contains(Q0 + ".lora_A")) {
            return new long[] {8, shape[1]};
        }
        return key.contains(Q0 + ".lora_B") ? new long[] {shape[0], 8} : shape;
    }

    private static float[] times(float[] v, float factor) {
        float[] out = v.clone();
        for (int i = 0; i < out.length; i++) {
            out[i] *= factor;
        }
        return out;
    }

    @Test
    void perModuleRankAndAlphaScaleAsPeftDoes() throws Exception {
        // v_proj: alpha 24 (scaling 6, not 2). Layer 0's q_proj: r 8 (scaling 1, not 2).
        Path patterns = adapter("patterns", json -> {
            json.putObject("alpha_pattern").put("v_proj", 24);
            json.putObject("rank_pattern").put(Q0, 8);
            return json;
        }, LoraPatternsTest::padQ0, LoraPatternsTest::padQ0Shape);
        Path plain = adapter("plain", json -> json, (key, v) -> key.contains("v_proj.lora_B") ? times(v, 3f)
                : key.contains(Q0 + ".lora_B") ? times(v, 0.5f) : v, (key, shape) -> shape);
        try (NDManager manager = NDManager.newBaseManager();
             LoraAdapter withPatterns = LoraAdapter.load(patterns, manager, ModelOptions.cpu());
             LoraAdapter scaled = LoraAdapter.load(plain, manager, ModelOptions.cpu())) {
            assertThat(withPatterns.module(Q0).scaling()).isEqualTo(1.0);
            assertThat(withPatterns.module("model.layers.1.self_attn.v_proj").scaling()).isEqualTo(6.0);
            assertThat(withPatterns.module("model.layers.1.self_attn.q_proj").scaling()).isEqualTo(2.0);
            // Merged into the weights
            try (LlamaModel model = LlamaModel.load(Goldens.path("tiny-llama-sft/fp32"), manager,
                    ModelOptions.cpu())) {
                for (String module : scaled.modulePaths()) {
                    Goldens.assertClose(LoraMerge.mergedWeight(model, withPatterns, module, 1f),
                            LoraMerge.mergedWeight(model, scaled, module, 1f), 1e-6, module);
                }
            }
            // Unmerged, on both decoders
            long[] ids = Goldens.prompt("p0");
            try (Decoder cpu = CpuDecoder.load(Goldens.path("tiny-llama-sft/fp32"));
                 Decoder djl = new DjlDecoder(LlamaModel.load(Goldens.path("tiny-llama-sft/fp32"), manager,
                         ModelOptions.cpu()))) {
                for (Decoder decoder : List.of(cpu, djl)) {
                    Goldens.assertClose(lastLogits(decoder, ids, withPatterns), lastLogits(decoder, ids, scaled), 1e-5,
                            decoder.getClass().getSimpleName() + " logits");
                }
            }
        }
    }

    private static float[] lastLogits(Decoder decoder, long[] ids, LoraAdapter adapter) {
        float[][] inputs = new float[ids.length][];
        float[] ones = new float[ids.length];
        boolean[] wanted = new boolean[ids.length];
        for (int i = 0; i < ids.length; i++) {
            inputs[i] = decoder.embed((int) ids[i]);
            ones[i] = 1f;
        }
        wanted[ids.length - 1] = true;
        return decoder.logits(inputs, new int[ids.length], decoder.newCache(1),
                List.of(new LoraApplication(adapter, ones)), wanted)[ids.length - 1];
    }

    @Test
    void whatThisRuntimeCannotApplyIsRefusedByName() throws Exception {
        assertRefused(adapter("bias", json -> json.put("bias", "lora_only"), (k, v) -> v, (k, s) -> s),
                ExpoException.Kind.FAILED_PRECONDITION, "trains biases");
        assertRefused(adapter("save", json -> {
            json.putArray("modules_to_save").add("lm_head");
            return json;
        }, (k, v) -> v, (k, s) -> s), ExpoException.Kind.FAILED_PRECONDITION, "modules_to_save");
        assertRefused(adapter("replication", json -> {
            json.putArray("layer_replication").addArray().add(0).add(1);
            return json;
        }, (k, v) -> v, (k, s) -> s), ExpoException.Kind.FAILED_PRECONDITION, "layer_replication");
        assertRefused(adapter("rank", json -> {
            json.putObject("rank_pattern").put("q_proj", 8);   // the tensors still have rank 4
            return json;
        }, (k, v) -> v, (k, s) -> s), ExpoException.Kind.INVALID_ARGUMENT, "has rank 4 but");
        for (String key : List.of("base_model.model.lm_head.lora_A.weight",
                "base_model.model.model.embed_tokens.lora_embedding_A")) {
            Path head = Files.createDirectories(dir.resolve("head" + key.length()));
            Files.copy(Goldens.path("tiny-llama-lora/fp32/adapter_config.json"), head.resolve("adapter_config.json"));
            SafetensorsWriter.write(head.resolve("adapter_model.safetensors"),
                    List.of(Tensor.fromFloats(key, DType.F32, new long[] {2, 2}, new float[4])));
            assertRefused(head, ExpoException.Kind.FAILED_PRECONDITION, "attention and MLP projections only");
        }
        assertRefused(adapter("regex", json -> {
            json.putObject("alpha_pattern").put("q_proj(", 8);
            return json;
        }, (k, v) -> v, (k, s) -> s), ExpoException.Kind.INVALID_ARGUMENT, "not a regular expression");
    }

    private static void assertRefused(Path adapter, ExpoException.Kind kind, String message) {
        try (NDManager manager = NDManager.newBaseManager()) {
            assertThatThrownBy(() -> LoraAdapter.load(adapter, manager, ModelOptions.cpu()))
                    .isInstanceOfSatisfying(ExpoException.class, e -> assertThat(e.kind()).isEqualTo(kind))
                    .hasMessageContaining(message);
        }
    }
}

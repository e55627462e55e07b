package dev.expo.modeling.lora;

import ai.djl.ndarray.NDManager;
import dev.expo.checkpoint.SafetensorsFile;
import dev.expo.checkpoint.TensorInfo;
import dev.expo.modeling.Goldens;
import dev.expo.modeling.ModelOptions;
import dev.expo.modeling.NdArrays;
import dev.expo.modeling.llama.LlamaModel;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;

/** Merged weights against PEFT's merge_and_unload, and a save / load round trip in PEFT's format. */
class LoraTest {

    @Test
    void mergingMatchesPeftMergeAndUnload() {
        try (NDManager manager = NDManager.newBaseManager();
             LlamaModel model = LlamaModel.load(Goldens.path("tiny-llama-sft/fp32"), manager, ModelOptions.cpu());
             LoraAdapter adapter = LoraAdapter.load(Goldens.path("tiny-llama-lora/fp32"), manager,
                     ModelOptions.cpu())) {
            String golden = "tiny-llama-lora/golden/merged_target_weights.safetensors";
            try (SafetensorsFile merged = SafetensorsFile.open(Goldens.path(golden))) {
                assertThat(merged.tensors()).hasSize(12);
                for (TensorInfo tensor : merged.tensors()) {
                    String module = tensor.name().substring(0, tensor.name().length() - ".weight".length());
                    Goldens.assertClose(LoraMerge.mergedWeight(model, adapter, module, 1f),
                            merged.tensor(tensor.name()).toFloats(), 1e-6, tensor.name());
                }
            }
        }
    }

    @Test
    void savedAdaptersLoadBackUnchanged(@TempDir Path dir) {
        try (NDManager manager = NDManager.newBaseManager();
             LoraAdapter original = LoraAdapter.load(Goldens.path("tiny-llama-lora/fp32"), manager,
                     ModelOptions.cpu())) {
            original.save(dir);
            try (LoraAdapter reloaded = LoraAdapter.load(dir, manager, ModelOptions.cpu())) {
                assertThat(reloaded.config()).isEqualTo(original.config());
                assertThat(reloaded.modulePaths()).containsExactlyInAnyOrderElementsOf(original.modulePaths());
                for (String path : original.modulePaths()) {
                    assertThat(NdArrays.toFloats(reloaded.module(path).a()))
                            .containsExactly(NdArrays.toFloats(original.module(path).a()));
                    assertThat(NdArrays.toFloats(reloaded.module(path).b()))
                            .containsExactly(NdArrays.toFloats(original.module(path).b()));
                }
            }
            try (SafetensorsFile saved = SafetensorsFile.open(dir.resolve("adapter_model.safetensors"))) {
                assertThat(saved.tensors()).extracting(TensorInfo::name)
                        .contains("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight");
            }
        }
    }
}

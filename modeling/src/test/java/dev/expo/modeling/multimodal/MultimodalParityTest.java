package dev.expo.modeling.multimodal;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.JsonNode;
import dev.expo.modeling.Goldens;
import dev.expo.modeling.ModelOptions;
import dev.expo.modeling.NdArrays;
import dev.expo.modeling.clip.ClipVisionModel;
import dev.expo.modeling.clip.ImageDecoder;
import dev.expo.modeling.clip.RgbImage;
import dev.expo.modeling.llama.KvCache;
import dev.expo.modeling.llama.LlamaModel;
import dev.expo.modeling.lora.LoraAdapter;
import dev.expo.modeling.lora.LoraApplication;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.util.Arrays;
import java.util.List;

/**
 * The seed's fusion against the multimodal DDPO fixture (real HF/PEFT modules): the penultimate CLIP features
 * without the class token, the projected image tokens, and the language model's text logits with the image prefix
 * and the LoRA adapter on, within 1e-4.
 */
class MultimodalParityTest {

    @Test
    void imageTokensAndTextLogitsMatchTheReference() throws Exception {
        String step = "ddpo-multimodal/golden/step.safetensors";
        JsonNode examples = Goldens.json("ddpo-multimodal/golden/step.json").get("examples");
        try (NDManager manager = NDManager.newBaseManager();
             LlamaModel llm = LlamaModel.load(Goldens.path("tiny-llama-sft"), manager, ModelOptions.cpu());
             ClipVisionModel clip = ClipVisionModel.load(Goldens.path("tiny-clip-vision"), manager, ModelOptions.cpu());
             Projector projector = Projector.load(Goldens.path("ddpo-multimodal/projector.safetensors"), manager,
                     ModelOptions.cpu());
             LoraAdapter adapter = LoraAdapter.load(Goldens.path("ddpo-multimodal/adapter"), manager,
                     ModelOptions.cpu())) {
            MultimodalModel model = new MultimodalModel(clip, projector, adapter, -2, true, llm.config().hiddenSize());
            float[] features = Goldens.floats(step, "image_features");
            float[] tokens = Goldens.floats(step, "image_tokens");
            float[] textLogits = Goldens.floats(step, "policy_text_logits");
            int perImage = 16 * 64;
            for (int example = 0; example < 2; example++) {
                try (NDManager scope = manager.newSubManager(); KvCache cache = llm.newCache(1, 128)) {
                    JsonNode ex = examples.get(example);
                    RgbImage image = ImageDecoder.decode(Files.readAllBytes(Goldens.path("rlhfv/"
                            + ex.get("image").asText())), 1 << 24);
                    NDArray prefix = model.imagePrefix(scope, image);
                    NDArray clipFeatures = clip.forward(scope, List.of(clip.processor().process(image)))
                            .hiddenState(-2).get(":, 1:, :");
                    Goldens.assertClose(NdArrays.toFloats(clipFeatures), Arrays.copyOfRange(features,
                            example * perImage, (example + 1) * perImage), 1e-4, "image features " + example);
                    Goldens.assertClose(NdArrays.toFloats(prefix), Arrays.copyOfRange(tokens, example * perImage,
                            (example + 1) * perImage), 1e-4, "image tokens " + example);

                    long[] ids = new long[ex.get("chosen_input_ids").size()];
                    for (int i = 0; i < ids.length; i++) {
                        ids[i] = ex.get("chosen_input_ids").get(i).asLong();
                    }
                    NDArray inputs = prefix.concat(llm.embed(scope, new long[][] {ids}), 1);
                    int total = model.imageTokens() + ids.length;
                    NDArray hidden = llm.forward(scope, inputs, new int[] {0}, new int[] {total}, cache,
                            List.of(new LoraApplication(adapter, new float[] {1f})), false).hidden();
                    float[] logits = NdArrays.toFloats(llm.logits(hidden.get(":, " + model.imageTokens() + ":, :")));
                    // Row `example` of the policy batch is chosen_example; compare the text positions before its
                    // final </s> (the reference masks that key, which only changes the logits predicting padding).
                    int vocab = 384;
                    int compared = (ids.length - 1) * vocab;
                    int rowStart = example * 51 * vocab;
                    Goldens.assertClose(Arrays.copyOf(logits, compared), Arrays.copyOfRange(textLogits, rowStart,
                            rowStart + compared), 1e-4, "text logits " + example);
                }
            }
        }
    }
}

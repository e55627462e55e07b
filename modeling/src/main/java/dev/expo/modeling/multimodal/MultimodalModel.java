package dev.expo.modeling.multimodal;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.expo.common.ExpoException;
import dev.expo.modeling.clip.ClipImageProcessor;
import dev.expo.modeling.clip.ClipVisionModel;
import dev.expo.modeling.clip.RgbImage;
import dev.expo.modeling.llama.LlamaModel;
import dev.expo.modeling.lora.LoraAdapter;

import java.util.List;

/**
 * A language model that reads images: the vision tower's features of a chosen layer (class token dropped), through
 * the projector, become a prefix of the text embeddings — image tokens first, then the text from its BOS, with
 * positions counting the image tokens like any others (the seed's fusion, as the DDPO fixtures spell it out).
 * The parts are shared, not owned: the registry that loaded them closes them.
 *
 * @param adapter null = none
 */
public record MultimodalModel(LlamaModel languageModel, ClipVisionModel visionTower, Projector projector,
                              LoraAdapter adapter, int visionLayer, boolean dropClassToken) {

    public MultimodalModel {
        if (projector.inputSize() != visionTower.config().hiddenSize()
                || projector.outputSize() != languageModel.config().hiddenSize()) {
            throw ExpoException.failedPrecondition("the projector maps " + projector.inputSize() + " -> "
                    + projector.outputSize() + " but the vision tower has hidden size "
                    + visionTower.config().hiddenSize() + " and the language model " + languageModel.config()
                    .hiddenSize());
        }
    }

    /** Image tokens {@code [1, P, llm_hidden]} for one image. */
    public NDArray imagePrefix(NDManager scope, RgbImage image) {
        ClipImageProcessor.PixelValues pixels = visionTower.processor().process(image);
        NDArray features = visionTower.forward(scope, List.of(pixels)).hiddenState(visionLayer);
        if (dropClassToken) {
            features = features.get(":, 1:, :");
        }
        return projector.apply(features);
    }

    /** Image tokens then text embeddings, {@code [1, P + T, hidden]}. */
    public NDArray inputs(NDManager scope, RgbImage image, long[] textIds) {
        NDArray text = languageModel.embed(scope, new long[][] {textIds});
        return image == null ? text : imagePrefix(scope, image).concat(text, 1);
    }

    public int imageTokens() {
        int patches = visionTower.config().patchesPerSide() * visionTower.config().patchesPerSide();
        return dropClassToken ? patches : patches + 1;
    }
}

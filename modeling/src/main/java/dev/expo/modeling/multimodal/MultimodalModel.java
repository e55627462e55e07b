package dev.expo.modeling.multimodal;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.expo.common.ExpoException;
import dev.expo.modeling.NdArrays;
import dev.expo.modeling.clip.ClipImageProcessor;
import dev.expo.modeling.clip.ClipVisionModel;
import dev.expo.modeling.clip.RgbImage;
import dev.expo.modeling.lora.LoraAdapter;

import java.util.List;

/**
 * What makes a language model read images: the vision tower's features of a chosen layer (class token dropped),
 * through the projector, become a prefix of the text embeddings — image tokens first, then the text from its BOS,
 * with positions counting the image tokens like any others (the seed's fusion, as the DDPO fixtures spell it out).
 * The parts are shared, not owned: the registry that loaded them closes them.
 *
 * @param adapter null = none
 */
public record MultimodalModel(ClipVisionModel visionTower, Projector projector, LoraAdapter adapter, int visionLayer,
                              boolean dropClassToken, int languageHiddenSize) {

    public MultimodalModel {
        if (projector.inputSize() != visionTower.config().hiddenSize() || projector.outputSize() != languageHiddenSize) {
            throw ExpoException.failedPrecondition("the projector maps " + projector.inputSize() + " -> "
                    + projector.outputSize() + " but the vision tower has hidden size "
                    + visionTower.config().hiddenSize() + " and the language model " + languageHiddenSize);
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

    /** The image tokens as rows of input embeddings, for a {@link dev.expo.modeling.Decoder}. */
    public float[][] imageRows(RgbImage image) {
        try (NDManager scope = NDManager.newBaseManager()) {
            float[] flat = NdArrays.toFloats(imagePrefix(scope, image));
            float[][] rows = new float[flat.length / languageHiddenSize][languageHiddenSize];
            for (int r = 0; r < rows.length; r++) {
                System.arraycopy(flat, r * languageHiddenSize, rows[r], 0, languageHiddenSize);
            }
            return rows;
        }
    }

    public int imageTokens() {
        int patches = visionTower.config().patchesPerSide() * visionTower.config().patchesPerSide();
        return dropClassToken ? patches : patches + 1;
    }
}

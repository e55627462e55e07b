package dev.expo.training.engine.ddpo;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.core.Linear;
import dev.expo.modeling.llama.LlamaModel;
import dev.expo.modeling.lora.LoraApplication;

import java.util.List;

/**
 * The seed's multimodal forward for a batch of rows, to their weighted log-probs (the fixtures README's fusion recipe):
 * image tokens = projector(CLIP features) first, then the text embeddings from its bos; positions from 0 over both; a
 * length mask; logits of the text part only; {@code logp_t = log_softmax(logits[t])[ids[t+1]]}; weighted per row.
 * Run inside a GradientCollector for the policy, outside for the reference (adapters empty = disable_adapter()).
 */
public final class DdpoForward {

    private DdpoForward() {
    }

    /**
     * @param features  CLIP features [R, P, visionHidden] (class token dropped), constants
     * @param weight    projector weight [hidden, visionHidden]; bias [hidden]
     * @param ids       text ids per row ({@code [bos] + prompt + response + [eos]})
     * @param weights   per-row token weights over the log-prob axis (length ids.length - 1; 0 on the prompt)
     * @return the weighted log-prob of each row, [R]
     */
    public static NDArray weightedLogps(NDManager scope, LlamaModel model, NDArray features, NDArray weight,
                                        NDArray bias, List<LoraApplication> adapters, long[][] ids, float[][] weights,
                                        boolean average) {
        int rows = ids.length;
        int patches = (int) features.getShape().get(1);
        int width = 0;
        for (long[] row : ids) {
            width = Math.max(width, row.length);
        }
        NDArray image = Linear.linear(features, weight, bias).singletonOrThrow();     // [R, P, hidden]
        NDArray text = model.embed(scope, ids);                                        // [R, T, hidden]
        int[] lengths = new int[rows];
        for (int r = 0; r < rows; r++) {
            lengths[r] = patches + ids[r].length;
        }
        NDArray hidden = model.forwardSequences(scope, image.concat(text, 1), lengths, adapters);
        NDArray logits = model.logits(hidden.get(":, {}:-1, :", patches));           // text positions 0..T-2
        if (logits.getDataType() != DataType.FLOAT32) {
            logits = logits.toType(DataType.FLOAT32, false);   // as autocast runs log_softmax: in float32
        }
        NDArray logp = logits.logSoftmax(-1);                                          // [R, T-1, vocab]
        long[] labels = new long[rows * (width - 1)];
        float[] w = new float[rows * (width - 1)];
        for (int r = 0; r < rows; r++) {
            for (int t = 0; t < ids[r].length - 1; t++) {
                labels[r * (width - 1) + t] = ids[r][t + 1];
                w[r * (width - 1) + t] = weights[r][t];
            }
        }
        NDArray picked = logp.gather(scope.create(labels, new Shape(rows, width - 1, 1)), 2).squeeze(2);
        NDArray tokenWeights = scope.create(w, new Shape(rows, width - 1));
        NDArray weighted = picked.mul(tokenWeights).sum(new int[] {1});
        return average ? weighted.div(tokenWeights.sum(new int[] {1})) : weighted;
    }
}

package dev.expo.modeling;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.expo.modeling.llama.KvCache;
import dev.expo.modeling.llama.LlamaConfig;
import dev.expo.modeling.llama.LlamaModel;
import dev.expo.modeling.lora.LoraApplication;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** {@link Decoder} on the DJL model: rows grouped by slot into one padded batch per call. */
public final class DjlDecoder implements Decoder {

    private final LlamaModel model;

    public DjlDecoder(LlamaModel model) {
        this.model = model;
    }

    public LlamaModel model() {
        return model;
    }

    @Override
    public LlamaConfig config() {
        return model.config();
    }

    @Override
    public float[] embed(int token) {
        try (NDManager scope = model.manager().newSubManager()) {
            return NdArrays.toFloats(model.embed(scope, new long[][] {{token}}));
        }
    }

    private record DjlCache(KvCache cache) implements Cache {
        @Override
        public int slots() {
            return cache.slots();
        }

        @Override
        public int length(int slot) {
            return cache.length(slot);
        }

        @Override
        public void reset(int slot) {
            cache.reset(slot);
        }
    }

    @Override
    public long kvBytesPerPosition() {
        LlamaConfig config = model.config();
        return 2L * config.numLayers() * config.numKvHeads() * config.headDim()
                * model.options().computeType().getNumOfBytes();
    }

    @Override
    public Cache newCache(int slots) {
        return new DjlCache(model.newCache(slots, 64));
    }

    @Override
    public float[][] logits(float[][] inputs, int[] slots, Cache cache, List<LoraApplication> adapters,
                            boolean[] wanted) {
        Map<Integer, List<Integer>> rowsBySlot = new LinkedHashMap<>();
        for (int r = 0; r < slots.length; r++) {
            rowsBySlot.computeIfAbsent(slots[r], s -> new ArrayList<>()).add(r);
        }
        int batch = rowsBySlot.size();
        int width = rowsBySlot.values().stream().mapToInt(List::size).max().orElse(0);
        int hidden = model.config().hiddenSize();
        float[] padded = new float[batch * width * hidden];
        int[] batchSlots = new int[batch];
        int[] newTokens = new int[batch];
        int b = 0;
        for (Map.Entry<Integer, List<Integer>> entry : rowsBySlot.entrySet()) {
            batchSlots[b] = entry.getKey();
            newTokens[b] = entry.getValue().size();
            for (int t = 0; t < entry.getValue().size(); t++) {
                System.arraycopy(inputs[entry.getValue().get(t)], 0, padded, (b * width + t) * hidden, hidden);
            }
            b++;
        }
        List<LoraApplication> batchAdapters = new ArrayList<>();
        for (LoraApplication adapter : adapters) {
            float[] scales = new float[batch];
            b = 0;
            for (List<Integer> rows : rowsBySlot.values()) {
                scales[b++] = adapter.rowScales()[rows.getFirst()];
            }
            batchAdapters.add(new LoraApplication(adapter.adapter(), scales));
        }
        try (NDManager scope = model.manager().newSubManager()) {
            NDArray x = scope.create(padded, new Shape(batch, width, hidden)).toType(
                    model.options().computeType(), false);
            NDArray hiddenStates = model.forward(scope, x, batchSlots, newTokens, ((DjlCache) cache).cache(),
                    batchAdapters, false).hidden();
            // Only the rows asked for go through the lm_head: a prompt chunk wants one row or none, and the logits of
            // all of them ([rows, vocab], copied to the host) would cost as much as a quarter of a small model's
            // prefill. A decode step, whose rows are all wanted and unpadded, takes them as they are.
            List<Integer> picked = new ArrayList<>();   // wanted rows' indices in the flattened [batch * width]
            List<Integer> pickedRows = new ArrayList<>();
            b = 0;
            for (List<Integer> rows : rowsBySlot.values()) {
                for (int t = 0; t < rows.size(); t++) {
                    if (wanted[rows.get(t)]) {
                        picked.add(b * width + t);
                        pickedRows.add(rows.get(t));
                    }
                }
                b++;
            }
            float[][] out = new float[slots.length][];
            if (picked.isEmpty()) {
                return out;
            }
            NDArray flat = hiddenStates.reshape(batch * width, hidden);
            NDArray selected = picked.size() == batch * width ? flat : NDArrays.stack(new NDList(
                    picked.stream().map(i -> flat.get(i.longValue())).toArray(NDArray[]::new)));
            float[] logits = NdArrays.toFloats(model.logits(selected));
            int vocab = model.config().isSequenceClassifier() ? model.config().numLabels()
                    : model.config().vocabSize();
            for (int i = 0; i < picked.size(); i++) {
                out[pickedRows.get(i)] = java.util.Arrays.copyOfRange(logits, i * vocab, (i + 1) * vocab);
            }
            return out;
        }
    }

    @Override
    public void close() {
        model.close();
    }
}

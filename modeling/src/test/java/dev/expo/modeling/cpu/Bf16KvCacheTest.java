package dev.expo.modeling.cpu;

import com.fasterxml.jackson.databind.JsonNode;
import dev.expo.checkpoint.DType;
import dev.expo.modeling.Goldens;
import dev.expo.modeling.sampling.TokenSampler;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The opt-in BF16 KV cache: logits stay within BF16's precision of transformers' float32 goldens and greedy
 * generations keep their tokens; a row's results do not depend on what else is in the batch, as with float32; and
 * the cache takes half the memory.
 */
class Bf16KvCacheTest {

    @ParameterizedTest
    @ValueSource(strings = {"tiny-llama-sft", "tiny-mistral"})
    void logitsStayCloseAndGreedyTokensHold(String model) {
        try (CpuDecoder decoder = CpuDecoder.load(Goldens.path(model), DType.BF16)) {
            String logitsFile = model + "/golden/logits.safetensors";
            JsonNode generate = Goldens.json(model + "/golden/generate.json");
            int vocab = decoder.config().vocabSize();
            for (String prompt : List.of("p0", "p1")) {
                long[] ids = Goldens.prompt(prompt);
                CpuKvCache cache = decoder.newCache(1);
                assertThat(cache.dtype()).isEqualTo(DType.BF16);
                float[][] inputs = new float[ids.length][];
                for (int i = 0; i < ids.length; i++) {
                    inputs[i] = decoder.embed((int) ids[i]);
                }
                float[][] logits = decoder.logits(decoder.forward(inputs, new int[ids.length], cache, List.of()));
                float[] flat = new float[ids.length * vocab];
                for (int i = 0; i < ids.length; i++) {
                    System.arraycopy(logits[i], 0, flat, i * vocab, vocab);
                }
                Goldens.assertClose(flat, Goldens.floats(logitsFile, "logits.bf16." + prompt), 5e-2,
                        model + " logits " + prompt);
                JsonNode expected = generate.get(prompt).get("bf16");
                List<Long> tokens = new ArrayList<>();
                float[] last = logits[ids.length - 1];
                for (int step = 0; step < expected.get("num_new_tokens").asInt(); step++) {
                    int token = TokenSampler.argmax(last);
                    tokens.add((long) token);
                    last = decoder.logits(decoder.forward(new float[][] {decoder.embed(token)}, new int[1], cache,
                            List.of()))[0];
                }
                List<Long> want = new ArrayList<>();
                expected.get("new_tokens").forEach(t -> want.add(t.asLong()));
                assertThat(tokens).as(model + " greedy " + prompt).isEqualTo(want);
            }
        }
    }

    @Test
    void aRowGetsTheSameBitsAloneAndInABatchAndTheCacheIsHalfTheSize() {
        try (CpuDecoder decoder = CpuDecoder.load(Goldens.path("tiny-llama-sft"), DType.BF16)) {
            int[][] prompts = {{1, 5, 9, 200, 31}, {1, 77, 3}, {1, 8, 8, 8, 150, 151, 152, 3, 4}};
            float[][][] alone = new float[prompts.length][][];
            for (int p = 0; p < prompts.length; p++) {
                alone[p] = generate(decoder, new int[][] {prompts[p]})[0];
            }
            float[][][] together = generate(decoder, prompts);
            for (int p = 0; p < prompts.length; p++) {
                for (int step = 0; step < alone[p].length; step++) {
                    assertThat(together[p][step]).as("prompt " + p + " step " + step).isEqualTo(alone[p][step]);
                }
            }
        }
        CpuKvCache f32 = new CpuKvCache(2, 2, 16, 128, 1, DType.F32);
        CpuKvCache bf16 = new CpuKvCache(2, 2, 16, 128, 1, DType.BF16);
        f32.reserve(0, 10);
        bf16.reserve(0, 10);
        assertThat(((short[]) bf16.keys(1, 0)).length).isEqualTo(((float[]) f32.keys(1, 0)).length);
    }

    /** Prefills the prompts together, then greedy-decodes four steps together; each step's logits per prompt. */
    private static float[][][] generate(CpuDecoder decoder, int[][] prompts) {
        CpuKvCache cache = decoder.newCache(prompts.length);
        List<float[]> rows = new ArrayList<>();
        List<Integer> slots = new ArrayList<>();
        boolean[] wanted = new boolean[java.util.Arrays.stream(prompts).mapToInt(p -> p.length).sum()];
        for (int p = 0; p < prompts.length; p++) {
            for (int token : prompts[p]) {
                rows.add(decoder.embed(token));
                slots.add(p);
            }
            wanted[rows.size() - 1] = true;
        }
        float[][] logits = decoder.logits(rows.toArray(float[][]::new), slots.stream().mapToInt(i -> i).toArray(),
                cache, List.of(), wanted);
        float[][][] out = new float[prompts.length][5][];
        int[] decodeSlots = new int[prompts.length];
        boolean[] all = new boolean[prompts.length];
        int row = -1;
        for (int p = 0; p < prompts.length; p++) {
            row += prompts[p].length;
            out[p][0] = logits[row];
            decodeSlots[p] = p;
            all[p] = true;
        }
        for (int step = 1; step < 5; step++) {
            float[][] inputs = new float[prompts.length][];
            for (int p = 0; p < prompts.length; p++) {
                inputs[p] = decoder.embed(TokenSampler.argmax(out[p][step - 1]));
            }
            float[][] next = decoder.logits(inputs, decodeSlots, cache, List.of(), all);
            for (int p = 0; p < prompts.length; p++) {
                out[p][step] = next[p];
            }
        }
        return out;
    }
}

package dev.expo.modeling.cpu;

import dev.expo.checkpoint.DType;
import dev.expo.modeling.Goldens;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * A row's logits do not depend on what it was computed with: its whole prompt at once (attention in blocks of query
 * rows and tiles of keys), a row at a time (as decode steps), in chunks, or in calls shared with another sequence's
 * rows. Continuous batching, chunked prefill and prefix caching all rest on this, bit for bit.
 */
class CpuDecoderRowsTest {

    @ParameterizedTest
    @CsvSource({"tiny-llama-sft, F32", "tiny-llama-sft, BF16", "tiny-mistral, F32"})   // Mistral: a sliding window
    void aRowsLogitsDoNotDependOnHowItsPromptIsSplit(String model, DType kvCacheDtype) {
        try (CpuDecoder decoder = CpuDecoder.load(Goldens.path(model), kvCacheDtype)) {
            Random random = new Random(5);
            int[] prompt = randomIds(random, 100, decoder.config().vocabSize());
            int[] other = randomIds(random, 60, decoder.config().vocabSize());
            float[][] whole = inChunks(decoder, prompt, prompt.length);
            for (int chunk : new int[] {1, 7, 33}) {
                float[][] split = inChunks(decoder, prompt, chunk);
                for (int r = 0; r < prompt.length; r++) {
                    assertThat(split[r]).as("chunks of " + chunk + ", position " + r).isEqualTo(whole[r]);
                }
            }
            // Each call: five rows of the prompt (slot 1) after three of another sequence (slot 0).
            CpuKvCache cache = decoder.newCache(2);
            float[][] shared = new float[prompt.length][];
            for (int call = 0; 5 * call < prompt.length; call++) {
                int otherFrom = Math.min(other.length, 3 * call);
                int otherTo = Math.min(other.length, otherFrom + 3);
                int from = 5 * call;
                int to = Math.min(prompt.length, from + 5);
                float[][] rows = new float[otherTo - otherFrom + to - from][];
                int[] slots = new int[rows.length];
                for (int i = otherFrom; i < otherTo; i++) {
                    rows[i - otherFrom] = decoder.embed(other[i]);
                }
                for (int i = from; i < to; i++) {
                    rows[otherTo - otherFrom + i - from] = decoder.embed(prompt[i]);
                    slots[otherTo - otherFrom + i - from] = 1;
                }
                float[][] logits = decoder.logits(decoder.forward(rows, slots, cache, List.of()));
                System.arraycopy(logits, otherTo - otherFrom, shared, from, to - from);
            }
            for (int r = 0; r < prompt.length; r++) {
                assertThat(shared[r]).as("sharing calls, position " + r).isEqualTo(whole[r]);
            }
        }
    }

    /** Two decoders of one model in one process, one on each kernel set: the same logits, bit for bit. */
    @Test
    void theCompiledAndJavaKernelsGiveTheSameLogitsSideBySide() {
        assumeTrue(MatrixKernels.nativeAvailable(), "skipped: " + MatrixKernels.NATIVE.description());
        try (CpuDecoder java = CpuDecoder.load(Goldens.path("tiny-llama-sft"), DType.F32, MatrixKernels.JAVA);
             CpuDecoder compiled = CpuDecoder.load(Goldens.path("tiny-llama-sft"), DType.F32, MatrixKernels.NATIVE)) {
            assertThat(java.kernels()).isEqualTo(MatrixKernels.JAVA);
            assertThat(compiled.kernels()).isEqualTo(MatrixKernels.NATIVE);
            int[] prompt = randomIds(new Random(9), 40, java.config().vocabSize());
            for (int chunk : new int[] {1, 40}) {
                float[][] byJava = inChunks(java, prompt, chunk);
                float[][] byCompiled = inChunks(compiled, prompt, chunk);
                for (int r = 0; r < prompt.length; r++) {
                    assertThat(byCompiled[r]).as("chunks of " + chunk + ", position " + r).isEqualTo(byJava[r]);
                }
            }
        }
    }

    private static int[] randomIds(Random random, int length, int vocab) {
        int[] ids = new int[length];
        ids[0] = 1;
        for (int i = 1; i < length; i++) {
            ids[i] = 3 + random.nextInt(vocab - 3);
        }
        return ids;
    }

    /** The prompt's logits, computed {@code chunk} rows per call in one slot. */
    private static float[][] inChunks(CpuDecoder decoder, int[] ids, int chunk) {
        CpuKvCache cache = decoder.newCache(1);
        float[][] logits = new float[ids.length][];
        for (int from = 0; from < ids.length; from += chunk) {
            int to = Math.min(ids.length, from + chunk);
            float[][] rows = new float[to - from][];
            for (int i = from; i < to; i++) {
                rows[i - from] = decoder.embed(ids[i]);
            }
            float[][] out = decoder.logits(decoder.forward(rows, new int[rows.length], cache, List.of()));
            System.arraycopy(out, 0, logits, from, out.length);
        }
        return Arrays.copyOf(logits, logits.length);
    }
}

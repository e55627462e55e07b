package dev.expo.modeling.cpu;

import dev.expo.checkpoint.DType;
import dev.expo.modeling.Decoder;
import dev.expo.modeling.Goldens;
import dev.expo.modeling.sampling.TokenSampler;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.util.List;
import java.util.stream.IntStream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Keys and values detached from one slot and attached to another (prefix caching): a sequence that continues from
 * them computes the same bits as one that computed its whole prompt, in either cache dtype.
 */
class CpuKvCacheHandOverTest {

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "BF16"})
    void aSequenceContinuingFromDetachedPositionsGetsTheSameLogits(DType dtype) {
        try (CpuDecoder decoder = CpuDecoder.load(Goldens.path("tiny-llama-sft"), dtype)) {
            int[] first = {1, 5, 9, 200, 31, 44, 12};
            CpuKvCache cache = decoder.newCache(2);
            float[] last = prefill(decoder, cache, 0, first, 0)[first.length - 1];
            int[] generated = new int[3];
            for (int step = 0; step < generated.length; step++) {
                generated[step] = TokenSampler.argmax(last);
                last = decoder.logits(decoder.forward(new float[][] {decoder.embed(generated[step])}, new int[] {0},
                        cache, List.of()))[0];
            }
            Decoder.Detached kv = cache.detach(0);
            assertThat(cache.length(0)).isZero();
            assertThat(kv.length()).isEqualTo(first.length + generated.length);
            assertThat(kv.bytes()).isEqualTo(64 * decoder.kvBytesPerPosition());   // caches grow from 64 positions

            // The next turn shares the first turn and two of its tokens, then goes its own way.
            int[] next = IntStream.concat(IntStream.concat(IntStream.of(first), IntStream.of(generated[0],
                    generated[1])), IntStream.of(77, 78)).toArray();
            int keep = first.length + 2;
            CpuKvCache scratch = decoder.newCache(1);
            float[][] computed = prefill(decoder, scratch, 0, next, 0);
            // A copy of the shared part first (the detached positions stay as they were), then the positions taken
            // over: both continue to the same bits as the prompt computed from scratch.
            cache.attachCopy(0, kv, keep);
            assertThat(cache.length(0)).isEqualTo(keep);
            float[][] copied = prefill(decoder, cache, 0, next, keep);
            cache.attach(1, kv, keep);
            assertThat(cache.length(1)).isEqualTo(keep);
            float[][] reused = prefill(decoder, cache, 1, next, keep);
            for (int r = keep; r < next.length; r++) {
                assertThat(copied[r - keep]).as("copied, position " + r).isEqualTo(computed[r]);
                assertThat(reused[r - keep]).as("taken over, position " + r).isEqualTo(computed[r]);
            }
        }
    }

    @Test
    void onlyAnEmptySlotOfTheSameCacheTakesDetachedPositions() {
        CpuKvCache cache = new CpuKvCache(2, 2, 16, 128, 2);
        CpuKvCache other = new CpuKvCache(2, 2, 16, 128, 2);
        cache.reserve(0, 10);
        cache.advance(0, 10);
        cache.reserve(1, 3);
        cache.advance(1, 3);
        Decoder.Detached kv = cache.detach(0);
        assertThatThrownBy(() -> other.attach(0, kv, 5)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> cache.attach(1, kv, 5)).isInstanceOf(IllegalStateException.class);
        assertThatThrownBy(() -> cache.attach(0, kv, 11)).isInstanceOf(IndexOutOfBoundsException.class);
        assertThatThrownBy(() -> cache.attachCopy(1, kv, 5)).isInstanceOf(IllegalStateException.class);
        cache.attachCopy(0, kv, 0);
        assertThat(cache.length(0)).isZero();
        cache.attach(0, kv, 10);
        assertThat(cache.length(0)).isEqualTo(10);
    }

    /** Runs {@code ids[from..]} into the slot; the logits of those rows. */
    private static float[][] prefill(CpuDecoder decoder, CpuKvCache cache, int slot, int[] ids, int from) {
        float[][] rows = new float[ids.length - from][];
        for (int i = from; i < ids.length; i++) {
            rows[i - from] = decoder.embed(ids[i]);
        }
        int[] slots = new int[rows.length];
        java.util.Arrays.fill(slots, slot);
        return decoder.logits(decoder.forward(rows, slots, cache, List.of()));
    }
}

package dev.expo.training.engine.data;

/**
 * One tokenized preference pair as training reads it. Sequences are Muffin's: {@code [bos] + prompt + response +
 * [eos]}; the corrected positions index the per-token log-prob axis ({@code full[1:]}), as {@code get_diff_ids}
 * returns them, so response token k sits at {@code promptLength + k}.
 *
 * @param image the image's sha256 (its file in the dataset's images folder)
 */
public record PreferencePair(long row, String image, int promptLength, long[] chosenIds, long[] rejectedIds,
                             int[] chosenCorrected, int[] rejectedCorrected) {

    /** Text tokens of the longer side (the batch pads to it). */
    public int maxLength() {
        return Math.max(chosenIds.length, rejectedIds.length);
    }
}

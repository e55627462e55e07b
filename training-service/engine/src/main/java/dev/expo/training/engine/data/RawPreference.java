package dev.expo.training.engine.data;

import java.util.List;

/**
 * One row of a raw preference file, before any check: the fields as the file has them (null where missing) and what
 * was already wrong while reading it.
 *
 * @param row          0-based position in the file
 * @param image        the image file's bytes; null if missing
 * @param chosenMask   explicit corrected-token mask over the chosen response's tokens (+ the final eos), or null
 * @param problems     reasons the row cannot be used, found while reading (not JSON, missing keys, no image...)
 */
public record RawPreference(long row, String question, String chosen, String rejected, byte[] image,
                            int[] chosenMask, int[] rejectedMask, List<String> problems) {
}

package dev.expo.training.engine.data;

import java.util.ArrayList;
import java.util.List;

/**
 * Which tokens of a preference pair are the human's corrections: Muffin's {@code get_diff_ids(rejected[1:],
 * chosen[1:], min_match_size=3)} (thunlp/Muffin utils/diff_lib.py, as {@code DataCollatorForDPODataset} calls it).
 * difflib's matching blocks shorter than {@code minMatchSize} are dropped; every gap between the kept blocks (and
 * before the first, and up to the end) that is non-empty on <b>both</b> sides is a modified span on each side. So a
 * pure insertion or deletion weights nothing, and two edits fewer than {@code minMatchSize} tokens apart merge.
 *
 * @param rejected positions (in the ids given) of the rejected sequence's corrected tokens
 * @param chosen   positions of the chosen sequence's corrected tokens
 */
public record CorrectedTokens(int[] rejected, int[] chosen) {

    public static final int MUFFIN_MIN_MATCH_SIZE = 3;

    public static CorrectedTokens diff(long[] rejected, long[] chosen, int minMatchSize) {
        List<Integer> rejectedIds = new ArrayList<>();
        List<Integer> chosenIds = new ArrayList<>();
        int lastA = 0;
        int lastB = 0;
        for (SequenceMatcher.Match block : new SequenceMatcher(rejected, chosen).matchingBlocks()) {
            boolean end = block.size() == 0;
            if (block.size() < minMatchSize && !end) {
                continue;
            }
            if (block.a() > lastA && block.b() > lastB) {
                for (int i = lastA; i < block.a(); i++) {
                    rejectedIds.add(i);
                }
                for (int j = lastB; j < block.b(); j++) {
                    chosenIds.add(j);
                }
            }
            lastA = block.a() + block.size();
            lastB = block.b() + block.size();
        }
        return new CorrectedTokens(rejectedIds.stream().mapToInt(Integer::intValue).toArray(),
                chosenIds.stream().mapToInt(Integer::intValue).toArray());
    }
}

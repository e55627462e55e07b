package dev.expo.training.engine.data;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Python's {@code difflib.SequenceMatcher(None, a, b)} over token ids, reduced to what Muffin's {@code get_diff_ids}
 * uses: {@link #matchingBlocks()}. A port of CPython's Lib/difflib.py ({@code __chain_b}, {@code find_longest_match},
 * {@code get_matching_blocks}), kept line for line where the order matters, because the corrected-token weights
 * depend on exactly which of several equally long matches difflib picks:
 * <ul>
 *   <li><b>autojunk</b> (on by default in difflib): when {@code b} has 200 or more elements, every element occurring
 *       more than {@code len(b) // 100 + 1} times is "popular" and is dropped from the index, so it can never seed a
 *       match (it may still extend one, as junk does: the last two loops of {@code find_longest_match});</li>
 *   <li><b>ties</b>: of all longest matches, the one starting earliest in {@code a}, then earliest in {@code b};</li>
 *   <li>the recursion order (a stack, right part pushed last) does not change the result, because the blocks are
 *       sorted and adjacent ones merged at the end, as difflib does.</li>
 * </ul>
 * No Java diff library reproduces these rules (java-diff-utils is Myers' algorithm), hence the port.
 */
public final class SequenceMatcher {

    /** a[a:a+size] == b[b:b+size]. */
    public record Match(int a, int b, int size) {
    }

    private final long[] a;
    private final long[] b;
    /** b2j: each element of b -> the ascending indices where it occurs (popular elements removed). */
    private final Map<Long, int[]> b2j = new HashMap<>();

    public SequenceMatcher(long[] a, long[] b) {
        this(a, b, true);
    }

    public SequenceMatcher(long[] a, long[] b, boolean autojunk) {
        this.a = a.clone();
        this.b = b.clone();
        chainB(autojunk);
    }

    private void chainB(boolean autojunk) {
        Map<Long, List<Integer>> indices = new HashMap<>();
        for (int i = 0; i < b.length; i++) {
            indices.computeIfAbsent(b[i], k -> new ArrayList<>()).add(i);
        }
        int n = b.length;
        int ntest = n / 100 + 1;
        for (Map.Entry<Long, List<Integer>> entry : indices.entrySet()) {
            if (autojunk && n >= 200 && entry.getValue().size() > ntest) {
                continue;   // popular (difflib's bpopular): never seeds a match
            }
            b2j.put(entry.getKey(), entry.getValue().stream().mapToInt(Integer::intValue).toArray());
        }
    }

    /**
     * The longest matching block in a[alo:ahi] and b[blo:bhi] (difflib's find_longest_match). bjunk is empty here
     * (isjunk is None), so the junk-extension loops of difflib never run; popular elements are not junk in difflib
     * either (isbjunk tests bjunk only), so the first pair of extension loops may grow a match over them.
     */
    Match findLongestMatch(int alo, int ahi, int blo, int bhi) {
        int besti = alo;
        int bestj = blo;
        int bestsize = 0;
        Map<Integer, Integer> j2len = new HashMap<>();
        for (int i = alo; i < ahi; i++) {
            Map<Integer, Integer> newj2len = new HashMap<>();
            int[] js = b2j.get(a[i]);
            if (js != null) {
                for (int j : js) {
                    if (j < blo) {
                        continue;
                    }
                    if (j >= bhi) {
                        break;
                    }
                    int k = j2len.getOrDefault(j - 1, 0) + 1;
                    newj2len.put(j, k);
                    if (k > bestsize) {
                        besti = i - k + 1;
                        bestj = j - k + 1;
                        bestsize = k;
                    }
                }
            }
            j2len = newj2len;
        }
        // Extend with equal non-junk elements on both sides (catches popular elements next to the match).
        while (besti > alo && bestj > blo && a[besti - 1] == b[bestj - 1]) {
            besti--;
            bestj--;
            bestsize++;
        }
        while (besti + bestsize < ahi && bestj + bestsize < bhi && a[besti + bestsize] == b[bestj + bestsize]) {
            bestsize++;
        }
        return new Match(besti, bestj, bestsize);
    }

    /**
     * difflib's get_matching_blocks: the matching blocks in increasing order of a and b, adjacent blocks merged,
     * ending with the dummy (len(a), len(b), 0).
     */
    public List<Match> matchingBlocks() {
        Deque<int[]> queue = new ArrayDeque<>();
        queue.push(new int[] {0, a.length, 0, b.length});
        List<Match> blocks = new ArrayList<>();
        while (!queue.isEmpty()) {
            int[] q = queue.pop();   // difflib: queue.pop() takes the last pushed
            int alo = q[0];
            int ahi = q[1];
            int blo = q[2];
            int bhi = q[3];
            Match x = findLongestMatch(alo, ahi, blo, bhi);
            if (x.size() > 0) {
                blocks.add(x);
                if (alo < x.a() && blo < x.b()) {
                    queue.push(new int[] {alo, x.a(), blo, x.b()});
                }
                if (x.a() + x.size() < ahi && x.b() + x.size() < bhi) {
                    queue.push(new int[] {x.a() + x.size(), ahi, x.b() + x.size(), bhi});
                }
            }
        }
        blocks.sort((m1, m2) -> m1.a() != m2.a() ? Integer.compare(m1.a(), m2.a())
                : m1.b() != m2.b() ? Integer.compare(m1.b(), m2.b()) : Integer.compare(m1.size(), m2.size()));
        List<Match> merged = new ArrayList<>();
        int i1 = 0;
        int j1 = 0;
        int k1 = 0;
        for (Match m : blocks) {
            if (i1 + k1 == m.a() && j1 + k1 == m.b()) {
                k1 += m.size();
            } else {
                if (k1 > 0) {
                    merged.add(new Match(i1, j1, k1));
                }
                i1 = m.a();
                j1 = m.b();
                k1 = m.size();
            }
        }
        if (k1 > 0) {
            merged.add(new Match(i1, j1, k1));
        }
        merged.add(new Match(a.length, b.length, 0));
        return merged;
    }
}

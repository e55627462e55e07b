package dev.expo.inference.engine;

import java.util.List;

/**
 * Stop sequences over streamed text: text is released only once it cannot be the start of a stop string, and a
 * stop string itself is never released (generation ends before it).
 */
final class StopStrings {

    record Step(String emit, boolean stopped) {
    }

    private final List<String> stops;
    private final StringBuilder pending = new StringBuilder();

    StopStrings(List<String> stops) {
        this.stops = stops;
    }

    Step add(String delta) {
        pending.append(delta);
        if (stops.isEmpty()) {
            return new Step(release(pending.length()), false);
        }
        int first = -1;
        for (String stop : stops) {
            int at = pending.indexOf(stop);
            if (at >= 0 && (first < 0 || at < first)) {
                first = at;
            }
        }
        if (first >= 0) {
            String before = pending.substring(0, first);
            pending.setLength(0);
            return new Step(before, true);
        }
        return new Step(release(pending.length() - heldBack()), false);
    }

    /** What is left when generation ends for another reason. */
    String flush() {
        return release(pending.length());
    }

    /** The longest end of the pending text that is the beginning of some stop string. */
    private int heldBack() {
        int held = 0;
        for (String stop : stops) {
            for (int n = Math.min(stop.length() - 1, pending.length()); n > held; n--) {
                if (pending.toString().regionMatches(pending.length() - n, stop, 0, n)) {
                    held = n;
                    break;
                }
            }
        }
        return held;
    }

    private String release(int upTo) {
        String out = pending.substring(0, upTo);
        pending.delete(0, upTo);
        return out;
    }
}

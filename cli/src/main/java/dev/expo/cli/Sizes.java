package dev.expo.cli;

/** Human-readable sizes and durations for terminal output. */
final class Sizes {

    private Sizes() {
    }

    static String bytes(long bytes) {
        if (bytes < 1024) {
            return bytes + " B";
        }
        String[] units = {"KiB", "MiB", "GiB", "TiB"};
        double value = bytes;
        int unit = -1;
        while (value >= 1024 && unit < units.length - 1) {
            value /= 1024;
            unit++;
        }
        return String.format(value >= 100 ? "%.0f %s" : "%.1f %s", value, units[unit]);
    }

    static String seconds(double seconds) {
        if (seconds < 60) {
            return String.format("%.2f s", seconds);
        }
        long whole = Math.round(seconds);
        return String.format("%dm%02ds", whole / 60, whole % 60);
    }
}

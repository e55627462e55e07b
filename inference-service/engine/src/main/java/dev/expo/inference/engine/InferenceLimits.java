package dev.expo.inference.engine;

/** What one request may ask for. */
public record InferenceLimits(int maxImageBytes, long maxImagePixels, int maxNewTokens, int defaultMaxNewTokens) {

    public static InferenceLimits defaults() {
        return new InferenceLimits(20 << 20, 40_000_000L, 4096, 256);
    }
}

package dev.expo.gateway.access;

/** A key's limits; 0 = unlimited. */
public record QuotaLimits(int requestsPerMinute, int generatedTokensPerMinute, int concurrentStreams) {

    public static final QuotaLimits UNLIMITED = new QuotaLimits(0, 0, 0);

    public QuotaLimits {
        if (requestsPerMinute < 0 || generatedTokensPerMinute < 0 || concurrentStreams < 0) {
            throw new IllegalArgumentException("quota limits must be >= 0 (0 = unlimited)");
        }
    }
}

package dev.expo.gateway.access;

import io.github.bucket4j.Bucket;
import io.github.bucket4j.ConsumptionProbe;
import io.github.bucket4j.TimeMeter;

import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Per-key limits: requests per minute and generated tokens per minute as token buckets (Bucket4j, refilled
 * greedily: a minute's allowance comes back evenly over the minute), concurrent streams as a count. Tokens are
 * charged as they stream, so a stream may overdraw the bucket; the key's next call then waits until it refills.
 */
public final class Quotas {

    /** Which limit refused a call, and when to retry. */
    public static final class Exceeded extends RuntimeException {
        private final String limit;
        private final Duration retryAfter;

        Exceeded(String limit, String message, Duration retryAfter) {
            super(message);
            this.limit = limit;
            this.retryAfter = retryAfter;
        }

        /** "requests", "tokens" or "streams" (as OpenAI names its rate-limit types). */
        public String limit() {
            return limit;
        }

        public Duration retryAfter() {
            return retryAfter;
        }

        /** Whole seconds, at least 1, as HTTP's Retry-After takes them. */
        public long retryAfterSeconds() {
            return Math.max(1, (retryAfter.toMillis() + 999) / 1000);
        }
    }

    /** A call that was let in: release it once when it ends; tokens are charged to its key as they stream. */
    public interface Admission {
        void charge(int generatedTokens);

        void release();
    }

    private final Map<String, KeyState> byKey = new ConcurrentHashMap<>();
    private final TimeMeter time;

    public Quotas() {
        this(TimeMeter.SYSTEM_NANOTIME);
    }

    /** With a clock of one's own (tests refill buckets without waiting). */
    public Quotas(TimeMeter time) {
        this.time = time;
    }

    /**
     * Lets a call in or throws {@link Exceeded}. A stream takes one of the key's concurrent streams until released.
     */
    public Admission admit(ApiKey key, boolean stream) {
        KeyState state = byKey.computeIfAbsent(key.id(), id -> new KeyState(key.quota(), time));
        QuotaLimits limits = key.quota();
        if (state.requests != null) {
            ConsumptionProbe probe = state.requests.tryConsumeAndReturnRemaining(1);
            if (!probe.isConsumed()) {
                throw new Exceeded("requests", "key " + key.id() + " (" + key.name() + ") is over its quota of "
                        + limits.requestsPerMinute() + " requests per minute",
                        Duration.ofNanos(probe.getNanosToWaitForRefill()));
            }
        }
        if (state.tokens != null && state.tokens.getAvailableTokens() <= 0) {
            long wait = state.tokens.estimateAbilityToConsume(1).getNanosToWaitForRefill();
            throw new Exceeded("tokens", "key " + key.id() + " (" + key.name() + ") is over its quota of "
                    + limits.generatedTokensPerMinute() + " generated tokens per minute", Duration.ofNanos(wait));
        }
        if (stream) {
            int now = state.streams.incrementAndGet();
            if (limits.concurrentStreams() > 0 && now > limits.concurrentStreams()) {
                state.streams.decrementAndGet();
                throw new Exceeded("streams", "key " + key.id() + " (" + key.name() + ") already has "
                        + limits.concurrentStreams() + " streams open, its limit; close one first",
                        Duration.ofSeconds(1));
            }
        }
        return new Admission() {
            private final AtomicInteger released = new AtomicInteger();

            @Override
            public void charge(int generatedTokens) {
                if (state.tokens != null && generatedTokens > 0) {
                    state.tokens.consumeIgnoringRateLimits(generatedTokens);
                }
            }

            @Override
            public void release() {
                if (stream && released.getAndIncrement() == 0) {
                    state.streams.decrementAndGet();
                }
            }
        };
    }

    /** Streams the key has open now. */
    public int openStreams(String keyId) {
        KeyState state = byKey.get(keyId);
        return state == null ? 0 : state.streams.get();
    }

    private static final class KeyState {
        final Bucket requests;
        final Bucket tokens;
        final AtomicInteger streams = new AtomicInteger();

        KeyState(QuotaLimits limits, TimeMeter time) {
            requests = perMinute(limits.requestsPerMinute(), time);
            tokens = perMinute(limits.generatedTokensPerMinute(), time);
        }

        private static Bucket perMinute(int perMinute, TimeMeter time) {
            if (perMinute <= 0) {
                return null;
            }
            return Bucket.builder().withCustomTimePrecision(time).addLimit(limit -> limit.capacity(perMinute)
                    .refillGreedy(perMinute, Duration.ofMinutes(1))).build();
        }
    }
}

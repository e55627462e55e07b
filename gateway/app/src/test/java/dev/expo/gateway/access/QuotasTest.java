package dev.expo.gateway.access;

import io.github.bucket4j.TimeMeter;
import org.junit.jupiter.api.Test;

import java.time.Instant;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class QuotasTest {

    private final AtomicLong now = new AtomicLong();
    private final Quotas quotas = new Quotas(new TimeMeter() {
        @Override
        public long currentTimeNanos() {
            return now.get();
        }

        @Override
        public boolean isWallClockBased() {
            return false;
        }
    });

    private static ApiKey key(QuotaLimits limits) {
        return new ApiKey("k-000000000001", "test", Role.CLIENT, "00", limits, Instant.EPOCH, null);
    }

    @Test
    void requestsPerMinuteTripsThenRefillsEvenly() {
        ApiKey key = key(new QuotaLimits(6, 0, 0));
        for (int i = 0; i < 6; i++) {
            quotas.admit(key, false).release();
        }
        assertThatThrownBy(() -> quotas.admit(key, false)).isInstanceOfSatisfying(Quotas.Exceeded.class, e -> {
            assertThat(e.limit()).isEqualTo("requests");
            assertThat(e.retryAfterSeconds()).isEqualTo(10);      // 6 per minute: one back every 10 s
            assertThat(e.getMessage()).contains("k-000000000001", "6 requests per minute");
        });
        now.addAndGet(TimeUnit.SECONDS.toNanos(10));
        quotas.admit(key, false).release();
        assertThatThrownBy(() -> quotas.admit(key, false)).isInstanceOf(Quotas.Exceeded.class);
    }

    @Test
    void tokensAreChargedAsTheyStreamAndAnOverdraftWaits() {
        ApiKey key = key(new QuotaLimits(0, 60, 0));
        Quotas.Admission first = quotas.admit(key, true);
        first.charge(90);        // a stream may run past the allowance; the next call waits for the refill
        first.release();
        assertThatThrownBy(() -> quotas.admit(key, true)).isInstanceOfSatisfying(Quotas.Exceeded.class,
                e -> assertThat(e.limit()).isEqualTo("tokens"));
        now.addAndGet(TimeUnit.SECONDS.toNanos(31));
        quotas.admit(key, true).release();
    }

    @Test
    void concurrentStreamsAreHeldUntilReleasedOnce() {
        ApiKey key = key(new QuotaLimits(0, 0, 2));
        Quotas.Admission a = quotas.admit(key, true);
        Quotas.Admission b = quotas.admit(key, true);
        quotas.admit(key, false).release();      // a unary call takes no stream
        assertThatThrownBy(() -> quotas.admit(key, true)).isInstanceOfSatisfying(Quotas.Exceeded.class,
                e -> assertThat(e.limit()).isEqualTo("streams"));
        a.release();
        a.release();                              // twice is once
        assertThat(quotas.openStreams(key.id())).isEqualTo(1);
        quotas.admit(key, true);
        assertThatThrownBy(() -> quotas.admit(key, true)).isInstanceOf(Quotas.Exceeded.class);
        b.release();
    }

    @Test
    void zeroMeansUnlimited() {
        ApiKey key = key(QuotaLimits.UNLIMITED);
        for (int i = 0; i < 10_000; i++) {
            quotas.admit(key, true).charge(1000);
        }
    }
}

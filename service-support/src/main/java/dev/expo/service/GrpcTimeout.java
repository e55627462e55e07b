package dev.expo.service;

import java.util.OptionalLong;
import java.util.concurrent.TimeUnit;

/** The deadline a gRPC client sends: the {@code grpc-timeout} request header of gRPC over HTTP/2. */
public final class GrpcTimeout {

    private GrpcTimeout() {
    }

    /**
     * The header's value in nanoseconds (up to eight digits and a unit: H M S m u n; "1500m" = 1.5 s), saturated at
     * Long.MAX_VALUE; empty when absent or malformed, which a call then treats as no deadline.
     */
    public static OptionalLong nanos(String header) {
        if (header == null || header.length() < 2 || header.length() > 9) {
            return OptionalLong.empty();
        }
        String digits = header.substring(0, header.length() - 1);
        for (int i = 0; i < digits.length(); i++) {
            if (digits.charAt(i) < '0' || digits.charAt(i) > '9') {
                return OptionalLong.empty();
            }
        }
        TimeUnit unit = switch (header.charAt(header.length() - 1)) {
            case 'H' -> TimeUnit.HOURS;
            case 'M' -> TimeUnit.MINUTES;
            case 'S' -> TimeUnit.SECONDS;
            case 'm' -> TimeUnit.MILLISECONDS;
            case 'u' -> TimeUnit.MICROSECONDS;
            case 'n' -> TimeUnit.NANOSECONDS;
            default -> null;
        };
        return unit == null ? OptionalLong.empty() : OptionalLong.of(unit.toNanos(Long.parseLong(digits)));
    }
}

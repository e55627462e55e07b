package dev.expo.service;

import dev.expo.common.ExpoException;

import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.List;
import java.util.function.Function;

/**
 * Pagination for list RPCs: {@code page_size} 0 means the default, at most {@link #MAX_PAGE_SIZE}; the page token
 * is an opaque encoding of the last key returned, so a page stays right while items are added or removed.
 */
public final class Pages {

    public static final int DEFAULT_PAGE_SIZE = 100;
    public static final int MAX_PAGE_SIZE = 1000;

    public record Page<T>(List<T> items, String nextPageToken) {
    }

    private Pages() {
    }

    /** A job's key for listing newest first: its inverted creation time (to the nanosecond), then its id. */
    public static String newestFirstKey(java.time.Instant created, String id) {
        long inverted = Long.MAX_VALUE - created.toEpochMilli() * 1_000_000L - created.getNano() % 1_000_000;
        return String.format("%020d/%s", inverted, id);
    }

    /** One page of {@code sorted} (ascending by {@code key}, keys unique). */
    public static <T> Page<T> page(List<T> sorted, Function<T, String> key, int pageSize, String pageToken) {
        if (pageSize < 0) {
            throw ExpoException.invalidArgument("page_size", pageSize, "must not be negative");
        }
        int size = pageSize == 0 ? DEFAULT_PAGE_SIZE : Math.min(pageSize, MAX_PAGE_SIZE);
        int start = 0;
        if (pageToken != null && !pageToken.isEmpty()) {
            String after = decode(pageToken);
            while (start < sorted.size() && key.apply(sorted.get(start)).compareTo(after) <= 0) {
                start++;
            }
        }
        int end = Math.min(sorted.size(), start + size);
        String next = end < sorted.size() ? encode(key.apply(sorted.get(end - 1))) : "";
        return new Page<>(List.copyOf(sorted.subList(start, end)), next);
    }

    private static String encode(String key) {
        return Base64.getUrlEncoder().withoutPadding().encodeToString(("k:" + key).getBytes(StandardCharsets.UTF_8));
    }

    private static String decode(String token) {
        try {
            String text = new String(Base64.getUrlDecoder().decode(token), StandardCharsets.UTF_8);
            if (text.startsWith("k:")) {
                return text.substring(2);
            }
        } catch (IllegalArgumentException e) {
            // Falls through to the error below.
        }
        throw ExpoException.invalidArgument("page_token", token, "not a token this service returned");
    }
}

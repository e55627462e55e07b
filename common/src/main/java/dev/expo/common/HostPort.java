package dev.expo.common;

/** A network address written {@code HOST:PORT} ({@code [::1]:50051} for an IPv6 literal), as settings name them. */
public record HostPort(String host, int port) {

    /** Parses {@code HOST:PORT}; anything else is an IllegalArgumentException saying what was expected. */
    public static HostPort parse(String address) {
        String text = address == null ? "" : address.strip();
        int colon = text.lastIndexOf(':');
        int port = -1;
        if (colon > 0) {
            try {
                port = Integer.parseInt(text.substring(colon + 1));
            } catch (NumberFormatException e) {
                port = -1;
            }
        }
        if (port <= 0 || port > 65535) {
            throw new IllegalArgumentException("an address must be HOST:PORT, not \"" + text + "\"");
        }
        String host = text.substring(0, colon);
        if (host.startsWith("[") && host.endsWith("]")) {
            host = host.substring(1, host.length() - 1);
        }
        return new HostPort(host, port);
    }
}

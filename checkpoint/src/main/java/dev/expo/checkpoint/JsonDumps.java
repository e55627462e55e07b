package dev.expo.checkpoint;

/**
 * Strings as Python's {@code json.dumps} writes them, for files and prompts that must match Python's byte for byte
 * (Hugging Face's index files, transformers' {@code tojson} in chat templates).
 */
public final class JsonDumps {

    private JsonDumps() {
    }

    /** A quoted JSON string; with {@code ensureAscii} (json.dumps' default) every non-ASCII char is a \\u escape. */
    public static String string(String value, boolean ensureAscii) {
        StringBuilder out = new StringBuilder(value.length() + 2).append('"');
        for (int i = 0; i < value.length(); i++) {
            char c = value.charAt(i);
            switch (c) {
                case '"' -> out.append("\\\"");
                case '\\' -> out.append("\\\\");
                case '\n' -> out.append("\\n");
                case '\r' -> out.append("\\r");
                case '\t' -> out.append("\\t");
                case '\b' -> out.append("\\b");
                case '\f' -> out.append("\\f");
                default -> {
                    if (c < 0x20 || (ensureAscii && c >= 0x80)) {
                        out.append(String.format("\\u%04x", (int) c));
                    } else {
                        out.append(c);
                    }
                }
            }
        }
        return out.append('"').toString();
    }
}

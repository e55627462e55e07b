package dev.expo.modeling.tokenizer;

import java.util.Arrays;

/**
 * Turns a stream of token ids into text deltas without ever splitting a UTF-8 character: a token that ends in the
 * middle of a multi-byte character decodes to U+FFFD, so its text waits for the next token. Decodes a short window
 * (from a few tokens back) each time, as vLLM does, so the cost does not grow with the length, and tokenizers whose
 * decoding depends on the previous token (SentencePiece's leading spaces) still give the right text.
 */
public final class StreamingDetokenizer {

    private final TextTokenizer tokenizer;
    private final boolean skipSpecialTokens;
    private long[] ids = new long[16];
    private int count;
    private int prefixOffset;
    private int readOffset;

    public StreamingDetokenizer(TextTokenizer tokenizer, boolean skipSpecialTokens) {
        this.tokenizer = tokenizer;
        this.skipSpecialTokens = skipSpecialTokens;
    }

    /** Adds a token and returns the text it completes (possibly empty). */
    public String add(long id) {
        if (count == ids.length) {
            ids = Arrays.copyOf(ids, count * 2);
        }
        ids[count++] = id;
        String prefix = tokenizer.decode(Arrays.copyOfRange(ids, prefixOffset, readOffset), skipSpecialTokens);
        String full = tokenizer.decode(Arrays.copyOfRange(ids, prefixOffset, count), skipSpecialTokens);
        if (full.length() <= prefix.length() || full.endsWith("\uFFFD")) {
            return "";
        }
        prefixOffset = readOffset;
        readOffset = count;
        return full.substring(prefix.length());
    }

    /** Whatever is still held back (an incomplete character at the very end), as the decoder renders it. */
    public String flush() {
        String prefix = tokenizer.decode(Arrays.copyOfRange(ids, prefixOffset, readOffset), skipSpecialTokens);
        String full = tokenizer.decode(Arrays.copyOfRange(ids, prefixOffset, count), skipSpecialTokens);
        readOffset = count;
        prefixOffset = count;
        return full.startsWith(prefix) ? full.substring(prefix.length()) : "";
    }
}

package dev.expo.modeling.tokenizer;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.expo.checkpoint.JsonFiles;
import dev.expo.common.ExpoException;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A model's tokenizer: tokenizer.json through DJL's binding of the Rust Hugging Face tokenizers (the same code
 * transformers' fast tokenizers run), plus tokenizer_config.json's special tokens, add_bos_token / add_eos_token
 * (for the classes whose transformers code applies them) and the chat template.
 */
public final class TextTokenizer implements AutoCloseable {

    private static final ObjectMapper JSON = new ObjectMapper();

    /**
     * Tokenizer classes whose transformers implementation rebuilds tokenizer.json's post-processor from
     * add_bos_token (default true) and add_eos_token (default false) when it loads.
     */
    private static final java.util.Set<String> BOS_EOS_FLAG_CLASSES = java.util.Set.of("LlamaTokenizer",
            "LlamaTokenizerFast", "CodeLlamaTokenizer", "CodeLlamaTokenizerFast", "GemmaTokenizer",
            "GemmaTokenizerFast");

    private final HuggingFaceTokenizer tokenizer;
    private final Map<String, String> specialTokens;   // bos_token, eos_token, unk_token, ... as their text
    private final int bosTokenId;
    private final int eosTokenId;
    private final ChatTemplate chatTemplate;
    /** Null: tokenizer.json's post-processor adds the special tokens; else BOS and EOS as these flags say. */
    private final boolean[] bosEos;

    private TextTokenizer(HuggingFaceTokenizer tokenizer, Map<String, String> specialTokens,
                          ChatTemplate chatTemplate, boolean[] bosEos) {
        this.tokenizer = tokenizer;
        this.specialTokens = Map.copyOf(specialTokens);
        this.chatTemplate = chatTemplate;
        this.bosTokenId = singleId(specialTokens.get("bos_token"));
        this.eosTokenId = singleId(specialTokens.get("eos_token"));
        this.bosEos = bosEos;
        if (bosEos != null && ((bosEos[0] && bosTokenId < 0) || (bosEos[1] && eosTokenId < 0))) {
            throw ExpoException.invalidArgument("tokenizer_config.json sets add_bos_token or add_eos_token, but that "
                    + "token is not one token of tokenizer.json");
        }
    }

    /** Loads the tokenizer of a model folder (tokenizer.json, and tokenizer_config.json when present). */
    public static TextTokenizer load(Path dir) {
        Path file = dir.resolve("tokenizer.json");
        if (!Files.isRegularFile(file)) {
            throw ExpoException.failedPrecondition("model folder " + dir + " has no tokenizer.json");
        }
        HuggingFaceTokenizer tokenizer;
        try {
            tokenizer = HuggingFaceTokenizer.builder()
                    .optTokenizerPath(file)
                    .optAddSpecialTokens(true)
                    .optTruncation(false)
                    .optPadding(false)
                    .build();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file, e);
        } catch (RuntimeException e) {
            throw ExpoException.invalidArgument(file + " is not a tokenizer the Hugging Face tokenizers library can "
                    + "load: " + e.getMessage());
        }
        try {
            JsonNode config = config(dir.resolve("tokenizer_config.json"));
            Map<String, String> specialTokens = new LinkedHashMap<>();
            config.properties().forEach(field -> {
                String text = field.getKey().endsWith("_token") ? tokenText(field.getValue()) : null;
                if (text != null) {
                    specialTokens.put(field.getKey(), text);
                }
            });
            String template = chatTemplate(dir, config);
            boolean[] bosEos = BOS_EOS_FLAG_CLASSES.contains(config.path("tokenizer_class").asText())
                    ? new boolean[] {config.path("add_bos_token").asBoolean(true),
                        config.path("add_eos_token").asBoolean(false)} : null;
            return new TextTokenizer(tokenizer, specialTokens, template == null ? null : new ChatTemplate(template),
                    bosEos);
        } catch (IOException e) {
            tokenizer.close();
            throw new UncheckedIOException("cannot read the tokenizer files of " + dir, e);
        } catch (RuntimeException e) {
            tokenizer.close();
            throw e;
        }
    }

    /** tokenizer_config.json (an empty object when the folder has none). */
    private static JsonNode config(Path file) {
        return Files.isRegularFile(file) ? JsonFiles.readObject(file) : JSON.createObjectNode();
    }

    /**
     * The chat template as transformers finds it: a chat_template.jinja file (which wins over the config; newer
     * transformers versions save templates there), else tokenizer_config.json's chat_template: one template, or a list
     * of named ones of which "default" is used.
     */
    private static String chatTemplate(Path dir, JsonNode config) throws IOException {
        Path file = dir.resolve("chat_template.jinja");
        if (Files.isRegularFile(file)) {
            return Files.readString(file);
        }
        JsonNode template = config.path("chat_template");
        if (template.isTextual()) {
            return template.asText();
        }
        for (JsonNode named : template.isArray() ? template : JSON.createArrayNode()) {
            if ("default".equals(named.path("name").asText()) && named.path("template").isTextual()) {
                return named.get("template").asText();
            }
        }
        return null;
    }

    /** A special token is written either as a string or as {"content": ...} (AddedToken). */
    private static String tokenText(JsonNode node) {
        if (node == null || node.isNull()) {
            return null;
        }
        return node.isTextual() ? node.asText() : node.path("content").isTextual() ? node.get("content").asText() : null;
    }

    /** Token ids of {@code text}; with special tokens, the tokenizer's post-processor adds them (e.g. BOS). */
    public long[] encode(String text, boolean addSpecialTokens) {
        if (addSpecialTokens && bosEos != null) {
            long[] ids = tokenizer.encode(text, false, false).getIds();
            long[] out = new long[ids.length + (bosEos[0] ? 1 : 0) + (bosEos[1] ? 1 : 0)];
            System.arraycopy(ids, 0, out, bosEos[0] ? 1 : 0, ids.length);
            if (bosEos[0]) {
                out[0] = bosTokenId;
            }
            if (bosEos[1]) {
                out[out.length - 1] = eosTokenId;
            }
            return out;
        }
        Encoding encoding = tokenizer.encode(text, addSpecialTokens, false);
        return encoding.getIds();
    }

    public List<String> tokens(String text, boolean addSpecialTokens) {
        return List.of(tokenizer.encode(text, addSpecialTokens, false).getTokens());
    }

    public String decode(long[] ids, boolean skipSpecialTokens) {
        return tokenizer.decode(ids, skipSpecialTokens);
    }

    public ChatTemplate chatTemplate() {
        if (chatTemplate == null) {
            throw ExpoException.failedPrecondition("this model has no chat template (no chat_template.jinja, no "
                    + "chat_template in tokenizer_config.json); send a "
                    + "plain text prompt or token ids");
        }
        return chatTemplate;
    }

    public boolean hasChatTemplate() {
        return chatTemplate != null;
    }

    /**
     * A conversation as transformers' apply_chat_template renders it; its ids are the rendered text encoded
     * without adding special tokens (the template writes them itself).
     */
    public long[] encodeChat(List<ChatTemplate.Message> messages, boolean addGenerationPrompt) {
        return encode(renderChat(messages, addGenerationPrompt), false);
    }

    public String renderChat(List<ChatTemplate.Message> messages, boolean addGenerationPrompt) {
        return chatTemplate().render(messages, addGenerationPrompt, specialTokens);
    }

    /** The bos_token's id, or -1 when the tokenizer has none. */
    public int bosTokenId() {
        return bosTokenId;
    }

    public int eosTokenId() {
        return eosTokenId;
    }

    /** The id of a token that is one token of the vocabulary; -1 for none (or null). */
    private int singleId(String token) {
        if (token == null) {
            return -1;
        }
        long[] ids = tokenizer.encode(token, false, false).getIds();
        return ids.length == 1 ? (int) ids[0] : -1;
    }

    @Override
    public void close() {
        tokenizer.close();
    }
}

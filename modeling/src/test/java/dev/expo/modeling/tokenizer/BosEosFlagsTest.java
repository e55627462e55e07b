package dev.expo.modeling.tokenizer;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.expo.modeling.Goldens;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * add_bos_token / add_eos_token as transformers applies them: LlamaTokenizerFast (and CodeLlama's, Gemma's) rebuild
 * the post-processor from them; other classes keep tokenizer.json's.
 */
class BosEosFlagsTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    private long[] encode(String tokenizerClass, Boolean addBos, Boolean addEos) throws Exception {
        Path fixture = Goldens.path("tokenizer");
        Files.copy(fixture.resolve("tokenizer.json"), dir.resolve("tokenizer.json"),
                java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        ObjectNode config = (ObjectNode) JSON.readTree(fixture.resolve("tokenizer_config.json").toFile());
        config.put("tokenizer_class", tokenizerClass);
        config.remove("add_bos_token");
        config.remove("add_eos_token");
        if (addBos != null) {
            config.put("add_bos_token", addBos);
        }
        if (addEos != null) {
            config.put("add_eos_token", addEos);
        }
        JSON.writeValue(dir.resolve("tokenizer_config.json").toFile(), config);
        try (TextTokenizer tokenizer = TextTokenizer.load(dir)) {
            return tokenizer.encode("hello world", true);
        }
    }

    @Test
    void llamaClassesFollowTheFlagsOthersTheirPostProcessor() throws Exception {
        long[] asFile = encode("PreTrainedTokenizerFast", false, true);   // the flags mean nothing to this class
        long[] words;
        try (TextTokenizer tokenizer = TextTokenizer.load(Goldens.path("tokenizer"))) {
            words = tokenizer.encode("hello world", false);
            assertThat(asFile).isEqualTo(tokenizer.encode("hello world", true));
        }
        assertThat(asFile[0]).isEqualTo(1L);   // the fixture's tokenizer.json adds <s>
        assertThat(encode("LlamaTokenizerFast", null, null)).isEqualTo(concat(new long[] {1}, words));
        assertThat(encode("LlamaTokenizer", true, true)).isEqualTo(concat(concat(new long[] {1}, words),
                new long[] {2}));
        assertThat(encode("GemmaTokenizerFast", false, false)).isEqualTo(words);
    }

    private static long[] concat(long[] a, long[] b) {
        long[] out = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}

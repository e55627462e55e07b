package dev.expo.modeling.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import dev.expo.modeling.Goldens;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/** The tokenizer, chat template and streaming decoder against the goldens made by the real Rust tokenizers. */
class TokenizerParityTest {

    static TextTokenizer tokenizer;
    static JsonNode golden;

    @BeforeAll
    static void load() {
        tokenizer = TextTokenizer.load(Goldens.path("tokenizer"));
        golden = Goldens.json("tokenizer/golden/tokenizer_golden.json");
    }

    @AfterAll
    static void close() {
        tokenizer.close();
    }

    private static long[] longs(JsonNode array) {
        long[] out = new long[array.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = array.get(i).asLong();
        }
        return out;
    }

    @Test
    void idsTokensAndDecodesAreIdentical() {
        for (JsonNode c : golden.get("cases")) {
            String text = c.get("text").asText();
            assertThat(tokenizer.encode(text, true)).as(text).containsExactly(longs(c.get("ids")));
            assertThat(tokenizer.encode(text, false)).as(text).containsExactly(longs(c.get("ids_no_special")));
            List<String> tokens = new ArrayList<>();
            c.get("tokens").forEach(t -> tokens.add(t.asText()));
            assertThat(tokenizer.tokens(text, true)).as(text).isEqualTo(tokens);
            assertThat(tokenizer.decode(longs(c.get("ids")), true)).isEqualTo(c.get("decode_skip_special").asText());
            assertThat(tokenizer.decode(longs(c.get("ids")), false)).isEqualTo(c.get("decode_keep_special").asText());
        }
    }

    @Test
    void chatTemplatesRenderAsTransformersDoes() {
        for (JsonNode c : golden.get("chat_template_cases")) {
            List<ChatTemplate.Message> messages = new ArrayList<>();
            c.get("messages").forEach(m -> messages.add(new ChatTemplate.Message(m.get("role").asText(),
                    m.get("content").asText())));
            boolean generationPrompt = c.get("add_generation_prompt").asBoolean();
            assertThat(tokenizer.renderChat(messages, generationPrompt)).isEqualTo(c.get("rendered").asText());
            assertThat(tokenizer.encodeChat(messages, generationPrompt))
                    .containsExactly(longs(c.get("ids_apply_chat_template_tokenize_true")));
        }
    }

    @Test
    void streamingNeverSplitsACharacterAndAddsUpToTheWholeText() {
        for (JsonNode c : golden.get("cases")) {
            long[] ids = longs(c.get("ids_no_special"));
            StreamingDetokenizer stream = new StreamingDetokenizer(tokenizer, true);
            StringBuilder text = new StringBuilder();
            for (long id : ids) {
                String delta = stream.add(id);
                assertThat(delta).doesNotContain("\uFFFD");
                text.append(delta);
            }
            text.append(stream.flush());
            assertThat(text.toString()).as(c.get("text").asText()).isEqualTo(tokenizer.decode(ids, true));
        }
    }
}

package dev.expo.modeling.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import dev.expo.common.ExpoException;
import dev.expo.modeling.Goldens;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.time.LocalDateTime;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Chat templates of well-known models (Llama 2, 3 and 3.1, Mistral, Gemma, Phi-3, Zephyr, ChatML, Qwen-style
 * namespace(), DeepSeek-style split) and the Python-isms templates rely on, rendered by our Jinjava setup and compared
 * with Python's Jinja2 set up as transformers sets it up (testdata/chat-templates/render_with_jinja2.py wrote the
 * goldens).
 */
class ChatTemplateJinja2ParityTest {

    static Stream<Arguments> cases() {
        JsonNode all = Goldens.json("../chat-templates/jinja2_renderings.json");
        List<Arguments> out = new ArrayList<>();
        all.forEach(c -> out.add(Arguments.of(c.get("template").asText() + " / " + c.get("messages_name").asText()
                + (c.get("add_generation_prompt").asBoolean() ? " / generation prompt" : ""), c)));
        return out.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void rendersAsJinja2Does(String name, JsonNode c) {
        List<ChatTemplate.Message> messages = new ArrayList<>();
        c.get("messages").forEach(m -> messages.add(new ChatTemplate.Message(m.get("role").asText(),
                m.get("content").asText())));
        ChatTemplate template = new ChatTemplate(c.get("source").asText());
        boolean generationPrompt = c.get("add_generation_prompt").asBoolean();
        if (c.has("error")) {
            assertThatThrownBy(() -> template.render(messages, generationPrompt, "<s>", "</s>"))
                    .isInstanceOf(ExpoException.class)
                    .hasMessageContaining(c.get("error").asText());
        } else {
            assertThat(template.render(messages, generationPrompt, "<s>", "</s>"))
                    .isEqualTo(c.get("rendered").asText());
        }
    }

    @Test
    void tojsonWritesNumbersAndTextAsPythonsJsonDumps() {
        PythonJson json = new PythonJson();
        // Expected values printed by python3: json.dumps(x, ensure_ascii=False[, indent=2])
        Map<String, Object> value = new java.util.LinkedHashMap<>();
        value.put("f", 1.5);
        value.put("g", 0.00001);
        value.put("h", 1e20);
        value.put("i", 123456789012345680.0);
        value.put("j", 0.0001);
        value.put("k", -2.0);
        value.put("u", "ü\u0001\"\\\n\t✓");
        value.put("n", null);
        value.put("t", true);
        value.put("l", 7L);
        assertThat(json.filter(value, null, new Object[0], Map.of())).isEqualTo("{\"f\": 1.5, \"g\": 1e-05, "
                + "\"h\": 1e+20, \"i\": 1.2345678901234568e+17, \"j\": 0.0001, \"k\": -2.0, "
                + "\"u\": \"ü\\u0001\\\"\\\\\\n\\t✓\", \"n\": null, \"t\": true, \"l\": 7}");
        assertThat(json.filter(List.of(1, List.of(), Map.of("a", "b")), null, new Object[0], Map.of("indent", 2L)))
                .isEqualTo("[\n  1,\n  [],\n  {\n    \"a\": \"b\"\n  }\n]");
        assertThat(json.filter(Map.of("b", 1, "a", 2), null, new Object[0], Map.of("sort_keys", true,
                "separators", List.of(",", ":")))).isEqualTo("{\"a\":2,\"b\":1}");
    }

    @Test
    void strftimeFollowsCsDirectives() {
        LocalDateTime time = LocalDateTime.of(2024, 7, 6, 15, 4, 5);
        // python3: datetime(2024, 7, 6, 15, 4, 5).strftime(...)
        assertThat(Strftime.format("%d %b %Y", time)).isEqualTo("06 Jul 2024");
        assertThat(Strftime.format("%A %B %e %H:%M:%S %I%p %y %j %m %% %Q", time))
                .isEqualTo("Saturday July  6 15:04:05 03PM 24 188 07 % %Q");
    }
}

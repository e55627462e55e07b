package dev.expo.modeling.tokenizer;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.expo.common.ExpoException;
import dev.expo.modeling.Goldens;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Where a model folder's chat template comes from, as transformers looks for it. */
class ChatTemplateDiscoveryTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final List<ChatTemplate.Message> HELLO = List.of(new ChatTemplate.Message("user", "hello"));

    @TempDir
    Path dir;

    /** The fixture tokenizer, with its tokenizer_config.json edited. */
    private ObjectNode copyTokenizer() throws Exception {
        Path fixture = Goldens.path("tokenizer");
        Files.copy(fixture.resolve("tokenizer.json"), dir.resolve("tokenizer.json"));
        return (ObjectNode) JSON.readTree(fixture.resolve("tokenizer_config.json").toFile());
    }

    private String render(ObjectNode config) throws Exception {
        JSON.writeValue(dir.resolve("tokenizer_config.json").toFile(), config);
        try (TextTokenizer tokenizer = TextTokenizer.load(dir)) {
            return tokenizer.renderChat(HELLO, true);
        }
    }

    @Test
    void aChatTemplateFileWinsOverTheConfigAndSeesEverySpecialToken() throws Exception {
        ObjectNode config = copyTokenizer();
        Files.writeString(dir.resolve("chat_template.jinja"),
                "{{ bos_token }}|{{ unk_token }}|{{ pad_token }}|{{ messages[0].content }}|{{ eos_token }}");
        assertThat(render(config)).isEqualTo("<s>|<unk>|</s>|hello|</s>");
    }

    @Test
    void namedTemplatesUseTheDefault() throws Exception {
        ObjectNode config = copyTokenizer();
        config.set("chat_template", JSON.readTree("""
                [{"name": "tool_use", "template": "tools"}, {"name": "default", "template": "default:{{ messages[0].content }}"}]
                """));
        assertThat(render(config)).isEqualTo("default:hello");
    }

    @Test
    void noTemplateAnywhereIsAFailedPrecondition() throws Exception {
        ObjectNode config = copyTokenizer();
        config.remove("chat_template");
        assertThatThrownBy(() -> render(config))
                .isInstanceOfSatisfying(ExpoException.class,
                        e -> assertThat(e.kind()).isEqualTo(ExpoException.Kind.FAILED_PRECONDITION))
                .hasMessageContaining("chat_template.jinja");
    }

    @Test
    void aMalformedTokenizerConfigIsAnInvalidArgumentNamingIt() throws Exception {
        copyTokenizer();
        for (String broken : List.of("{\"chat_template\": ", "[1, 2]")) {
            Files.writeString(dir.resolve("tokenizer_config.json"), broken);
            assertThatThrownBy(() -> TextTokenizer.load(dir)).isInstanceOfSatisfying(ExpoException.class, e -> {
                assertThat(e.kind()).isEqualTo(ExpoException.Kind.INVALID_ARGUMENT);
                assertThat(e.getMessage()).contains("tokenizer_config.json");
            });
        }
    }
}

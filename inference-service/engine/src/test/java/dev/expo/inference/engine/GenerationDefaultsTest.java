package dev.expo.inference.engine;

import dev.expo.common.ExpoException;
import dev.expo.modeling.sampling.SamplingParams;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class GenerationDefaultsTest {

    @TempDir
    Path dir;

    private GenerationDefaults read(String json) throws Exception {
        Files.writeString(dir.resolve(GenerationDefaults.FILE_NAME), json);
        return GenerationDefaults.read(dir);
    }

    @Test
    void onlyTheValuesTheFileSetsCount() throws Exception {
        // Llama 3 Instruct's file, in substance
        GenerationDefaults llama3 = read("""
                {"bos_token_id": 128000, "eos_token_id": [128001, 128009], "do_sample": true, "temperature": 0.6,
                 "max_length": 4096, "top_p": 0.9}""");
        assertThat(llama3.eosTokenIds()).containsExactlyInAnyOrder(128001, 128009);
        SamplingParams server = SamplingParams.builder().temperature(1f).maxNewTokens(256).build();
        SamplingParams merged = llama3.over(server);
        assertThat(merged.temperature()).isEqualTo(0.6f);
        assertThat(merged.topP()).isEqualTo(0.9f);
        assertThat(merged.topK()).isZero();                 // not transformers' class default of 50
        assertThat(merged.maxNewTokens()).isEqualTo(256);  // max_length is a total, not a default for new tokens
        GenerationDefaults qwen = read("""
                {"eos_token_id": 2, "do_sample": true, "temperature": 0.7, "top_p": 0.8, "top_k": 20,
                 "repetition_penalty": 1.05, "max_new_tokens": 2048}""");
        assertThat(qwen.over(server)).extracting(SamplingParams::topK, SamplingParams::repetitionPenalty,
                SamplingParams::maxNewTokens).containsExactly(20, 1.05f, 2048);
        assertThat(qwen.eosTokenIds()).containsExactly(2);
        // min_p is a GenerationConfig field too (transformers >= 4.39)
        assertThat(read("{\"do_sample\": true, \"min_p\": 0.05}").over(server).minP()).isEqualTo(0.05f);
    }

    @Test
    void doSampleFalseMeansGreedyAndNoFileMeansNothing() throws Exception {
        assertThat(read("{\"do_sample\": false, \"temperature\": 0.6}").temperature()).isZero();
        Files.delete(dir.resolve(GenerationDefaults.FILE_NAME));
        assertThat(GenerationDefaults.read(dir)).isEqualTo(GenerationDefaults.NONE);
    }

    @Test
    void aBrokenFileSaysWhatIsWrong() {
        assertThatThrownBy(() -> read("{\"temperature\": "))
                .isInstanceOfSatisfying(ExpoException.class,
                        e -> assertThat(e.kind()).isEqualTo(ExpoException.Kind.INVALID_ARGUMENT))
                .hasMessageContaining("generation_config.json is not valid JSON");
        assertThatThrownBy(() -> read("{\"top_k\": -3}"))
                .isInstanceOfSatisfying(ExpoException.class,
                        e -> assertThat(e.kind()).isEqualTo(ExpoException.Kind.INVALID_ARGUMENT))
                .hasMessageContaining("generation_config.json: top_k");
        // A value of the wrong type is refused by name, not taken as unset.
        assertThatThrownBy(() -> read("{\"temperature\": \"hot\"}"))
                .isInstanceOfSatisfying(ExpoException.class,
                        e -> assertThat(e.kind()).isEqualTo(ExpoException.Kind.INVALID_ARGUMENT))
                .hasMessageContaining("temperature must be a number, not \"hot\"");
        assertThatThrownBy(() -> read("{\"min_p\": 2}")).hasMessageContaining("generation_config.json: min_p");
        assertThatThrownBy(() -> read("{\"top_k\": 2.5}")).hasMessageContaining("top_k must be an integer, not 2.5");
        assertThatThrownBy(() -> read("{\"max_new_tokens\": true}")).hasMessageContaining("max_new_tokens must be");
    }

    @Test
    void nullIsUnsetAndWholeFloatsAreIntegers() throws Exception {
        GenerationDefaults defaults = read("{\"temperature\": null, \"top_k\": 40.0, \"top_p\": null}");
        assertThat(defaults.temperature()).isNull();
        assertThat(defaults.topP()).isNull();
        assertThat(defaults.topK()).isEqualTo(40);
    }
}

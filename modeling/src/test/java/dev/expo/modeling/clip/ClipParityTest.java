package dev.expo.modeling.clip;

import ai.djl.ndarray.NDManager;
import dev.expo.common.ExpoException;
import dev.expo.modeling.Goldens;
import dev.expo.modeling.ModelOptions;
import dev.expo.modeling.NdArrays;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * CLIPImageProcessor and CLIPVisionModel against transformers 4.44.2: the resized uint8 image identical to Pillow's,
 * pixel values, every hidden state, the penultimate layer (LLaVA's choice) and the pooled output within 1e-4, for
 * the bf16 checkpoint (upcast) and the fp32 copy.
 */
class ClipParityTest {

    static NDManager manager;

    @BeforeAll
    static void start() {
        manager = NDManager.newBaseManager();
    }

    @AfterAll
    static void stop() {
        manager.close();
    }

    @ParameterizedTest
    @ValueSource(strings = {"img0_48x40", "img1_31x31"})
    void preprocessingMatchesPillowAndTransformers(String image) throws IOException {
        String golden = "tiny-clip-vision/golden/" + image + ".safetensors";
        RgbImage rgb = ImageDecoder.decode(Files.readAllBytes(Goldens.path("images/" + image + ".png")), 1 << 24);
        ClipImageProcessor processor = ClipImageProcessor.load(Goldens.path("tiny-clip-vision"), 32);
        RgbImage cropped = processor.resizeAndCrop(rgb);
        long[] expected = Goldens.longs(golden, "resized_cropped_uint8");
        int h = cropped.height();
        int w = cropped.width();
        long[] actual = new long[3 * h * w];
        for (int c = 0; c < 3; c++) {
            for (int y = 0; y < h; y++) {
                for (int x = 0; x < w; x++) {
                    actual[(c * h + y) * w + x] = cropped.get(x, y, c);
                }
            }
        }
        assertThat(actual).as("resized uint8 image").containsExactly(expected);
        Goldens.assertClose(processor.process(rgb).values(), Goldens.floats(golden, "pixel_values"), 1e-6,
                image + " pixel values");
    }

    @ParameterizedTest
    @ValueSource(strings = {"bf16", "fp32"})
    void hiddenStatesAndPoolerMatchTransformers(String variant) throws IOException {
        String dir = variant.equals("bf16") ? "tiny-clip-vision" : "tiny-clip-vision/fp32";
        try (ClipVisionModel model = ClipVisionModel.load(Goldens.path(dir), manager, ModelOptions.cpu())) {
            for (String image : List.of("img0_48x40", "img1_31x31")) {
                String golden = "tiny-clip-vision/golden/" + image + ".safetensors";
                try (NDManager scope = manager.newSubManager()) {
                    RgbImage rgb = ImageDecoder.decode(Files.readAllBytes(Goldens.path("images/" + image + ".png")),
                            1 << 24);
                    ClipVisionModel.Output out = model.forward(scope, List.of(ClipImageProcessor.load(
                            Goldens.path("tiny-clip-vision"), 32).process(rgb)));
                    float[] all = Goldens.floats(golden, "hidden_states_all." + variant);
                    int per = all.length / out.hiddenStates().size();
                    for (int i = 0; i < out.hiddenStates().size(); i++) {
                        Goldens.assertClose(NdArrays.toFloats(out.hiddenStates().get(i)),
                                Arrays.copyOfRange(all, i * per, (i + 1) * per), 1e-4, image + " hidden " + i);
                    }
                    Goldens.assertClose(NdArrays.toFloats(out.hiddenState(-2)),
                            Goldens.floats(golden, "hidden_states_penultimate." + variant), 1e-4, image + " [-2]");
                    Goldens.assertClose(NdArrays.toFloats(out.hiddenState(-1)),
                            Goldens.floats(golden, "last_hidden_state." + variant), 1e-4, image + " last");
                    Goldens.assertClose(NdArrays.toFloats(out.pooled()),
                            Goldens.floats(golden, "pooler_output." + variant), 1e-4, image + " pooled");
                }
            }
        }
    }

    /** A tower whose tensors disagree with its config.json is refused, naming the tensor, not run. */
    @Test
    void tensorsThatDisagreeWithTheConfigAreRefused(@TempDir Path dir) throws IOException {
        try (var files = Files.list(Goldens.path("tiny-clip-vision"))) {
            for (Path file : files.toList()) {
                Files.copy(file, dir.resolve(file.getFileName()));
            }
        }
        String config = Files.readString(dir.resolve("config.json"));
        var json = (com.fasterxml.jackson.databind.node.ObjectNode) new com.fasterxml.jackson.databind.ObjectMapper()
                .readTree(config);
        int inter = json.get("intermediate_size").asInt();
        Files.writeString(dir.resolve("config.json"), json.put("intermediate_size", inter + 8).toString());
        assertThatThrownBy(() -> ClipVisionModel.load(dir, manager, ModelOptions.cpu()))
                .isInstanceOfSatisfying(ExpoException.class,
                        e -> assertThat(e.kind()).isEqualTo(ExpoException.Kind.INVALID_ARGUMENT))
                .hasMessageContaining("tensor vision_model.encoder.layers.0.mlp.fc1.weight has shape [" + inter)
                .hasMessageContaining("makes it [" + (inter + 8));
    }
}

package dev.expo.modeling.clip;

import dev.expo.modeling.Goldens;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * PNG and JPEG variants (bit depths 1 to 16, gray, alpha, palettes, tRNS, CMYK, progressive, chroma subsampling,
 * embedded ICC profiles) decode to the very bytes of Pillow's {@code convert("RGB")}
 * (testdata/images-pillow/make_images.py wrote both).
 */
class ImageDecoderPillowParityTest {

    static Stream<String> images() throws IOException {
        try (Stream<Path> files = Files.list(Goldens.path("../images-pillow"))) {
            return files.map(f -> f.getFileName().toString()).filter(n -> n.endsWith(".png") || n.endsWith(".jpg"))
                    .sorted().toList().stream();
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("images")
    void decodesToPillowsRgb(String name) throws IOException {
        Path dir = Goldens.path("../images-pillow");
        RgbImage image = ImageDecoder.decode(Files.readAllBytes(dir.resolve(name)), 1 << 20);
        byte[] pillow = Files.readAllBytes(dir.resolve(name + ".rgb"));
        int[] expected = new int[pillow.length];
        for (int i = 0; i < pillow.length; i++) {
            expected[i] = pillow[i] & 0xFF;
        }
        assertThat(image.pixels()).as(name).containsExactly(expected);
    }

    @Test
    void onlyIccSegmentsLeaveAJpeg() throws IOException {
        byte[] jpeg = Files.readAllBytes(Goldens.path("../images-pillow/icc_linear.jpg"));
        byte[] stripped = ImageDecoder.withoutJpegIccProfile(jpeg);
        assertThat(new String(stripped, java.nio.charset.StandardCharsets.ISO_8859_1)).doesNotContain("ICC_PROFILE");
        assertThat(jpeg.length - stripped.length).isBetween(100, 4096);   // the profile's segment, no more
        byte[] plain = Files.readAllBytes(Goldens.path("../images-pillow/gray.jpg"));
        assertThat(ImageDecoder.withoutJpegIccProfile(plain)).isSameAs(plain);
        byte[] truncated = java.util.Arrays.copyOf(jpeg, 40);   // a segment running past the end: left as it is
        assertThat(ImageDecoder.withoutJpegIccProfile(truncated)).isSameAs(truncated);
    }
}

package dev.expo.modeling.clip;

import dev.expo.common.ExpoException;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import javax.imageio.IIOImage;
import javax.imageio.ImageIO;
import javax.imageio.ImageWriteParam;
import javax.imageio.ImageWriter;
import javax.imageio.stream.ImageOutputStream;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.util.Arrays;
import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** A JPEG cut short is a corrupt image (INVALID_ARGUMENT), as in Pillow; one missing only its end marker decodes. */
class ImageDecoderTruncationTest {

    @ParameterizedTest(name = "progressive {0}")
    @ValueSource(booleans = {false, true})
    void aJpegCutShortIsRefused(boolean progressive) throws IOException {
        byte[] jpeg = jpeg(progressive);
        for (double kept : new double[] {0.3, 0.6, 0.9, 0.99}) {
            byte[] cut = Arrays.copyOf(jpeg, (int) (jpeg.length * kept));
            assertThatThrownBy(() -> ImageDecoder.decode(cut, 1 << 20)).as("%s of the bytes", kept)
                    .isInstanceOfSatisfying(ExpoException.class,
                            e -> assertThat(e.kind()).isEqualTo(ExpoException.Kind.INVALID_ARGUMENT))
                    .hasMessageContaining("truncated");
        }
    }

    @ParameterizedTest(name = "progressive {0}")
    @ValueSource(booleans = {false, true})
    void aJpegMissingOnlyItsEndMarkerDecodes(boolean progressive) throws IOException {
        byte[] jpeg = jpeg(progressive);
        RgbImage whole = ImageDecoder.decode(jpeg, 1 << 20);
        RgbImage withoutEnd = ImageDecoder.decode(Arrays.copyOf(jpeg, jpeg.length - 2), 1 << 20);
        assertThat(withoutEnd.pixels()).containsExactly(whole.pixels());
    }

    private static byte[] jpeg(boolean progressive) throws IOException {
        BufferedImage image = new BufferedImage(120, 90, BufferedImage.TYPE_INT_RGB);
        SplittableRandom random = new SplittableRandom(7);
        for (int y = 0; y < image.getHeight(); y++) {
            for (int x = 0; x < image.getWidth(); x++) {
                image.setRGB(x, y, random.nextInt());
            }
        }
        ImageWriter writer = ImageIO.getImageWritersByFormatName("jpeg").next();
        ImageWriteParam param = writer.getDefaultWriteParam();
        if (progressive) {
            param.setProgressiveMode(ImageWriteParam.MODE_DEFAULT);
        }
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (ImageOutputStream output = ImageIO.createImageOutputStream(bytes)) {
            writer.setOutput(output);
            writer.write(null, new IIOImage(image, null, null), param);
        } finally {
            writer.dispose();
        }
        return bytes.toByteArray();
    }
}

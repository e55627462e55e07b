package dev.expo.modeling.clip;

import dev.expo.common.ExpoException;

import javax.imageio.ImageIO;
import javax.imageio.ImageReader;
import javax.imageio.stream.ImageInputStream;
import java.awt.image.BufferedImage;
import java.awt.image.IndexColorModel;
import java.awt.image.Raster;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.util.Iterator;

/**
 * PNG and JPEG bytes to RGB, as PIL's {@code Image.open(...).convert("RGB")}: grayscale is replicated, alpha is
 * dropped (not composited), palettes are looked up. The size is checked from the header before any pixel is
 * decoded, so an oversized image costs nothing.
 */
public final class ImageDecoder {

    private ImageDecoder() {
    }

    public static RgbImage decode(byte[] bytes, long maxPixels) {
        if (bytes == null || bytes.length == 0) {
            throw ExpoException.invalidArgument("image", "(empty)", "PNG or JPEG bytes are required");
        }
        try (ImageInputStream input = ImageIO.createImageInputStream(new ByteArrayInputStream(bytes))) {
            Iterator<ImageReader> readers = ImageIO.getImageReaders(input);
            if (input == null || !readers.hasNext()) {
                throw ExpoException.invalidArgument("image", bytes.length + " bytes",
                        "not a PNG or JPEG image (unrecognized format)");
            }
            ImageReader reader = readers.next();
            String format = reader.getFormatName().toLowerCase();
            if (!format.equals("png") && !format.equals("jpeg") && !format.equals("jpg")) {
                reader.dispose();
                throw ExpoException.invalidArgument("image", format, "only PNG and JPEG images are accepted");
            }
            try {
                reader.setInput(input, true, true);
                long pixels = (long) reader.getWidth(0) * reader.getHeight(0);
                if (reader.getWidth(0) <= 0 || reader.getHeight(0) <= 0) {
                    throw ExpoException.invalidArgument("image", "0 pixels", "the image is empty");
                }
                if (pixels > maxPixels) {
                    throw ExpoException.invalidArgument("image", reader.getWidth(0) + "x" + reader.getHeight(0),
                            "larger than the limit of " + maxPixels + " pixels");
                }
                return toRgb(reader.read(0));
            } finally {
                reader.dispose();
            }
        } catch (IOException | RuntimeException e) {
            if (e instanceof ExpoException expo) {
                throw expo;
            }
            throw ExpoException.invalidArgument("image", bytes.length + " bytes", "the image could not be decoded ("
                    + (e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage()) + ")");
        }
    }

    static RgbImage toRgb(BufferedImage image) {
        int width = image.getWidth();
        int height = image.getHeight();
        int[] rgb = new int[width * height * 3];
        Raster raster = image.getRaster();
        int bands = raster.getNumBands();
        boolean indexed = image.getColorModel() instanceof IndexColorModel;
        int bits = image.getColorModel().getComponentSize(0);
        int shift = Math.max(0, bits - 8);
        int[] sample = new int[bands];
        for (int y = 0; y < height; y++) {
            for (int x = 0; x < width; x++) {
                int at = (y * width + x) * 3;
                if (indexed) {
                    int argb = image.getRGB(x, y);
                    rgb[at] = (argb >> 16) & 0xFF;
                    rgb[at + 1] = (argb >> 8) & 0xFF;
                    rgb[at + 2] = argb & 0xFF;
                    continue;
                }
                raster.getPixel(x, y, sample);
                if (bands <= 2) {
                    int gray = sample[0] >> shift;
                    rgb[at] = gray;
                    rgb[at + 1] = gray;
                    rgb[at + 2] = gray;
                } else {
                    rgb[at] = sample[0] >> shift;
                    rgb[at + 1] = sample[1] >> shift;
                    rgb[at + 2] = sample[2] >> shift;
                }
            }
        }
        return new RgbImage(width, height, rgb);
    }
}

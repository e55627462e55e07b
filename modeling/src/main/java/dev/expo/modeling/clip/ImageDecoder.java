package dev.expo.modeling.clip;

import dev.expo.common.ExpoException;

import javax.imageio.ImageIO;
import javax.imageio.ImageReader;
import javax.imageio.stream.ImageInputStream;
import java.awt.color.ColorSpace;
import java.awt.image.BufferedImage;
import java.awt.image.IndexColorModel;
import java.awt.image.Raster;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;

/**
 * PNG and JPEG bytes to RGB, as PIL's {@code Image.open(...).convert("RGB")}, value for value: grayscale is replicated,
 * alpha is dropped (not composited), palettes are looked up, 16-bit samples keep their high byte except 16-bit
 * grayscale, which Pillow clamps to 255, CMYK follows Pillow's formula, and an embedded ICC profile is not applied
 * (Pillow applies none; Java's JPEG reader would convert to sRGB with it). The size is checked from the header before
 * any pixel is decoded, so an oversized image costs nothing. A JPEG whose data stops before its last pixel is refused,
 * as Pillow refuses it ("image file is truncated"): Java's reader would fill the rest with gray and only warn.
 */
public final class ImageDecoder {

    private ImageDecoder() {
    }

    public static RgbImage decode(byte[] bytes, long maxPixels) {
        if (bytes == null || bytes.length == 0) {
            throw ExpoException.invalidArgument("image", "(empty)", "PNG or JPEG bytes are required");
        }
        byte[] data = withoutJpegIccProfile(bytes);
        try (ImageInputStream input = ImageIO.createImageInputStream(new ByteArrayInputStream(data))) {
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
                List<String> warnings = new ArrayList<>();
                reader.addIIOReadWarningListener((source, warning) -> warnings.add(warning));
                BufferedImage image = reader.read(0);
                for (String warning : warnings) {
                    // libjpeg's JWRN_HIT_MARKER: the scan's data stopped short. A missing end marker alone is tolerated.
                    if (warning.toLowerCase(Locale.ROOT).contains("premature end of data segment")) {
                        throw ExpoException.invalidArgument("image", bytes.length + " bytes", "the image is "
                                + "truncated: its data ends before the last pixel (" + warning + ")");
                    }
                }
                return toRgb(image);
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

    /** JPEG marker segments before the scan, less APP2 "ICC_PROFILE" ones; anything else is returned unchanged. */
    static byte[] withoutJpegIccProfile(byte[] bytes) {
        if (bytes.length < 4 || (bytes[0] & 0xFF) != 0xFF || (bytes[1] & 0xFF) != 0xD8) {
            return bytes;
        }
        ByteArrayOutputStream out = new ByteArrayOutputStream(bytes.length);
        out.write(bytes, 0, 2);
        int at = 2;
        boolean stripped = false;
        while (at + 4 <= bytes.length) {
            if ((bytes[at] & 0xFF) != 0xFF) {
                return bytes;   // not a marker where one must be: let the decoder say what is wrong
            }
            int marker = bytes[at + 1] & 0xFF;
            if (marker == 0xFF) {   // fill byte
                out.write(0xFF);
                at++;
                continue;
            }
            if (marker == 0xDA || marker == 0xD9) {   // start of scan (or end): the rest is image data
                break;
            }
            int length = ((bytes[at + 2] & 0xFF) << 8) | (bytes[at + 3] & 0xFF);
            if (length < 2 || at + 2 + length > bytes.length) {
                return bytes;
            }
            boolean icc = marker == 0xE2 && length >= 2 + ICC_PROFILE.length
                    && Arrays.equals(bytes, at + 4, at + 4 + ICC_PROFILE.length, ICC_PROFILE, 0, ICC_PROFILE.length);
            if (icc) {
                stripped = true;
            } else {
                out.write(bytes, at, 2 + length);
            }
            at += 2 + length;
        }
        if (!stripped) {
            return bytes;
        }
        out.write(bytes, at, bytes.length - at);
        return out.toByteArray();
    }

    private static final byte[] ICC_PROFILE = "ICC_PROFILE\0".getBytes(StandardCharsets.US_ASCII);

    static RgbImage toRgb(BufferedImage image) {
        int width = image.getWidth();
        int height = image.getHeight();
        int[] rgb = new int[width * height * 3];
        Raster raster = image.getRaster();
        int bands = raster.getNumBands();
        boolean indexed = image.getColorModel() instanceof IndexColorModel;
        boolean cmyk = image.getColorModel().getColorSpace().getType() == ColorSpace.TYPE_CMYK && bands == 4;
        int bits = image.getColorModel().getComponentSize(0);
        int shift = Math.max(0, bits - 8);
        // Pillow opens 16-bit grayscale (no alpha) as 32-bit integers, and converting those to 8 bits clamps.
        boolean clamp = bands == 1 && bits > 8;
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
                if (cmyk) {
                    // Pillow's cmyk2rgb: (255 - k) - c * (255 - k) / 255, in its rounding.
                    int notBlack = 255 - sample[3];
                    for (int c = 0; c < 3; c++) {
                        int product = sample[c] * notBlack + 128;
                        rgb[at + c] = Math.clamp(notBlack - (((product >> 8) + product) >> 8), 0, 255);
                    }
                } else if (bands <= 2) {
                    int gray = clamp ? Math.min(sample[0], 255) : sample[0] >> shift;
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

package dev.expo.modeling.clip;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * CLIPImageProcessor as transformers 4.44 runs it, driven by preprocessor_config.json: RGB; resize so the shortest
 * edge is {@code size} (the other edge int(size * long / short)) with Pillow's filter; center crop (zero padding when
 * the image is smaller); rescale in float64 then float32; normalize in float32; CHW.
 */
public final class ClipImageProcessor {

    /** The processed image: CHW float32 values. */
    public record PixelValues(int channels, int height, int width, float[] values) {
    }

    private static final ObjectMapper JSON = new ObjectMapper();

    private final boolean doResize;
    private final int shortestEdge;
    private final int resizeHeight;
    private final int resizeWidth;
    private final PillowResize.Filter filter;
    private final boolean doCenterCrop;
    private final int cropHeight;
    private final int cropWidth;
    private final boolean doRescale;
    private final double rescaleFactor;
    private final boolean doNormalize;
    private final float[] mean;
    private final float[] std;

    private ClipImageProcessor(JsonNode config) {
        doResize = config.path("do_resize").asBoolean(true);
        JsonNode size = config.path("size");
        if (size.isInt()) {
            shortestEdge = size.asInt();
            resizeHeight = -1;
            resizeWidth = -1;
        } else if (size.has("shortest_edge")) {
            shortestEdge = size.get("shortest_edge").asInt();
            resizeHeight = -1;
            resizeWidth = -1;
        } else if (size.has("height") && size.has("width")) {
            shortestEdge = -1;
            resizeHeight = size.get("height").asInt();
            resizeWidth = size.get("width").asInt();
        } else {
            shortestEdge = 224;
            resizeHeight = -1;
            resizeWidth = -1;
        }
        filter = PillowResize.Filter.ofPilCode(config.path("resample").asInt(3));
        doCenterCrop = config.path("do_center_crop").asBoolean(true);
        JsonNode crop = config.path("crop_size");
        cropHeight = crop.isInt() ? crop.asInt() : crop.path("height").asInt(224);
        cropWidth = crop.isInt() ? crop.asInt() : crop.path("width").asInt(224);
        doRescale = config.path("do_rescale").asBoolean(true);
        rescaleFactor = config.path("rescale_factor").asDouble(1 / 255.0);
        doNormalize = config.path("do_normalize").asBoolean(true);
        mean = floats(config.get("image_mean"), new float[] {0.48145466f, 0.4578275f, 0.40821073f});
        std = floats(config.get("image_std"), new float[] {0.26862954f, 0.26130258f, 0.27577711f});
    }

    /**
     * The folder's preprocessor_config.json; without one, CLIP's defaults at the tower's image size (shortest edge
     * and crop = image_size, bicubic, OpenAI's mean and std), as a folder holding only weights implies.
     */
    public static ClipImageProcessor load(Path dir, int imageSize) {
        Path file = dir.resolve("preprocessor_config.json");
        if (!Files.isRegularFile(file)) {
            return new ClipImageProcessor(JSON.createObjectNode().put("size", imageSize).put("crop_size", imageSize));
        }
        try {
            return new ClipImageProcessor(JSON.readTree(Files.readString(file)));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file, e);
        }
    }

    private static float[] floats(JsonNode node, float[] fallback) {
        if (node == null || !node.isArray() || node.size() != 3) {
            return fallback;
        }
        return new float[] {(float) node.get(0).asDouble(), (float) node.get(1).asDouble(),
            (float) node.get(2).asDouble()};
    }

    /** Resize and crop only: the uint8 image the model's pixels come from (for checking against PIL). */
    public RgbImage resizeAndCrop(RgbImage image) {
        RgbImage out = image;
        if (doResize) {
            int height;
            int width;
            if (shortestEdge > 0) {
                int shortSide = Math.min(image.width(), image.height());
                int longSide = Math.max(image.width(), image.height());
                int newLong = (int) (shortestEdge * (double) longSide / shortSide);
                boolean portrait = image.height() >= image.width();
                width = portrait ? shortestEdge : newLong;
                height = portrait ? newLong : shortestEdge;
            } else {
                width = resizeWidth;
                height = resizeHeight;
            }
            out = PillowResize.resize(out, width, height, filter);
        }
        if (doCenterCrop) {
            out = centerCrop(out, cropHeight, cropWidth);
        }
        return out;
    }

    public PixelValues process(RgbImage image) {
        RgbImage cropped = resizeAndCrop(image);
        int h = cropped.height();
        int w = cropped.width();
        float[] chw = new float[3 * h * w];
        for (int c = 0; c < 3; c++) {
            for (int y = 0; y < h; y++) {
                for (int x = 0; x < w; x++) {
                    double value = cropped.get(x, y, c);
                    float pixel = doRescale ? (float) (value * rescaleFactor) : (float) value;
                    if (doNormalize) {
                        pixel = (pixel - mean[c]) / std[c];
                    }
                    chw[(c * h + y) * w + x] = pixel;
                }
            }
        }
        return new PixelValues(3, h, w, chw);
    }

    /** transformers' center_crop: floor offsets; an image smaller than the crop is zero-padded around its middle. */
    static RgbImage centerCrop(RgbImage image, int cropHeight, int cropWidth) {
        int top = image.height() >= cropHeight ? (image.height() - cropHeight) / 2
                : -((cropHeight - image.height()) / 2);
        int left = image.width() >= cropWidth ? (image.width() - cropWidth) / 2 : -((cropWidth - image.width()) / 2);
        int[] out = new int[cropWidth * cropHeight * 3];
        for (int y = 0; y < cropHeight; y++) {
            int sy = y + top;
            for (int x = 0; x < cropWidth; x++) {
                int sx = x + left;
                if (sy < 0 || sx < 0 || sy >= image.height() || sx >= image.width()) {
                    continue;
                }
                for (int c = 0; c < 3; c++) {
                    out[(y * cropWidth + x) * 3 + c] = image.get(sx, sy, c);
                }
            }
        }
        return new RgbImage(cropWidth, cropHeight, out);
    }
}

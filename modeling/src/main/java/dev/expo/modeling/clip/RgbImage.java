package dev.expo.modeling.clip;

/** An 8-bit RGB image, row-major, 3 bytes a pixel (values 0..255 kept in ints for arithmetic). */
public record RgbImage(int width, int height, int[] pixels) {

    public RgbImage {
        if (pixels.length != width * height * 3) {
            throw new IllegalArgumentException("expected " + width * height * 3 + " values, got " + pixels.length);
        }
    }

    public int get(int x, int y, int channel) {
        return pixels[(y * width + x) * 3 + channel];
    }
}

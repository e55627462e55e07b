package dev.expo.modeling.clip;

/**
 * Pillow's {@code Image.resize} for 8-bit images (libImaging/Resample.c), reproduced exactly: a separable
 * convolution, horizontal pass first, with the filter's support widened by the scale factor when shrinking
 * (antialiasing), coefficients normalized then turned into fixed-point integers of 22 fractional bits, and every
 * pass rounded and clamped to 0..255. This is what CLIPImageProcessor's bicubic resize does; AWT's scaling differs.
 */
public final class PillowResize {

    /** Pillow's filters; bicubic is the one CLIP uses (resample = 3). */
    public enum Filter {
        BILINEAR(1.0), BICUBIC(2.0), LANCZOS(3.0);

        final double support;

        Filter(double support) {
            this.support = support;
        }

        double weight(double x) {
            return switch (this) {
                case BILINEAR -> {
                    double ax = Math.abs(x);
                    yield ax < 1.0 ? 1.0 - ax : 0.0;
                }
                case BICUBIC -> {
                    final double a = -0.5;
                    double ax = Math.abs(x);
                    if (ax < 1.0) {
                        yield ((a + 2.0) * ax - (a + 3.0)) * ax * ax + 1;
                    }
                    yield ax < 2.0 ? (((ax - 5) * ax + 8) * ax - 4) * a : 0.0;
                }
                case LANCZOS -> -3.0 <= x && x < 3.0 ? sinc(x) * sinc(x / 3) : 0.0;
            };
        }

        private static double sinc(double x) {
            if (x == 0.0) {
                return 1.0;
            }
            double px = x * Math.PI;
            return Math.sin(px) / px;
        }

        /** PIL's resample codes: 2 = bilinear, 3 = bicubic, 1 = lanczos. */
        public static Filter ofPilCode(int code) {
            return switch (code) {
                case 2 -> BILINEAR;
                case 3 -> BICUBIC;
                case 1 -> LANCZOS;
                default -> throw new IllegalArgumentException("unsupported PIL resample filter " + code);
            };
        }
    }

    private static final int PRECISION_BITS = 32 - 8 - 2;

    /** Coefficients of one pass: for output i, inputs [start[i], start[i] + count[i]) with integer weights. */
    private record Coefficients(int[] start, int[] count, int[][] weights) {
    }

    private PillowResize() {
    }

    public static RgbImage resize(RgbImage image, int width, int height, Filter filter) {
        boolean horizontal = width != image.width();
        boolean vertical = height != image.height();
        Coefficients rows = coefficients(image.height(), height, filter);
        RgbImage current = image;
        if (horizontal) {
            // Only the input rows the vertical pass will read (Pillow's ybox_first..ybox_last).
            int first = rows.start()[0];
            int last = rows.start()[height - 1] + rows.count()[height - 1];
            current = horizontalPass(image, first, last - first, coefficients(image.width(), width, filter));
            if (vertical) {
                for (int i = 0; i < height; i++) {
                    rows.start()[i] -= first;
                }
            }
        }
        if (vertical) {
            current = verticalPass(current, rows);
        }
        return current;
    }

    /** Pillow's precompute_coeffs (box = the whole input) and normalize_coeffs_8bpc. */
    private static Coefficients coefficients(int inSize, int outSize, Filter filter) {
        double scale = (double) inSize / outSize;
        double filterScale = Math.max(scale, 1.0);
        double support = filter.support * filterScale;
        int[] start = new int[outSize];
        int[] count = new int[outSize];
        int[][] weights = new int[outSize][];
        for (int out = 0; out < outSize; out++) {
            double center = (out + 0.5) * scale;
            double ss = 1.0 / filterScale;
            int min = Math.max(0, (int) (center - support + 0.5));
            int max = Math.min(inSize, (int) (center + support + 0.5)) - min;
            double[] k = new double[Math.max(0, max)];
            double sum = 0.0;
            for (int x = 0; x < max; x++) {
                double w = filter.weight((x + min - center + 0.5) * ss);
                k[x] = w;
                sum += w;
            }
            int[] fixed = new int[k.length];
            for (int x = 0; x < k.length; x++) {
                double normalized = sum != 0.0 ? k[x] / sum : k[x];
                fixed[x] = normalized < 0 ? (int) (-0.5 + normalized * (1 << PRECISION_BITS))
                        : (int) (0.5 + normalized * (1 << PRECISION_BITS));
            }
            start[out] = min;
            count[out] = max;
            weights[out] = fixed;
        }
        return new Coefficients(start, count, weights);
    }

    private static RgbImage horizontalPass(RgbImage in, int firstRow, int rows, Coefficients c) {
        int width = c.start().length;
        int[] out = new int[width * rows * 3];
        for (int y = 0; y < rows; y++) {
            for (int x = 0; x < width; x++) {
                for (int channel = 0; channel < 3; channel++) {
                    int sum = 1 << (PRECISION_BITS - 1);
                    for (int k = 0; k < c.count()[x]; k++) {
                        sum += in.get(c.start()[x] + k, y + firstRow, channel) * c.weights()[x][k];
                    }
                    out[(y * width + x) * 3 + channel] = clip8(sum);
                }
            }
        }
        return new RgbImage(width, rows, out);
    }

    private static RgbImage verticalPass(RgbImage in, Coefficients c) {
        int height = c.start().length;
        int[] out = new int[in.width() * height * 3];
        for (int y = 0; y < height; y++) {
            for (int x = 0; x < in.width(); x++) {
                for (int channel = 0; channel < 3; channel++) {
                    int sum = 1 << (PRECISION_BITS - 1);
                    for (int k = 0; k < c.count()[y]; k++) {
                        sum += in.get(x, c.start()[y] + k, channel) * c.weights()[y][k];
                    }
                    out[(y * in.width() + x) * 3 + channel] = clip8(sum);
                }
            }
        }
        return new RgbImage(in.width(), height, out);
    }

    /** Pillow's clip8: the integer part of the fixed-point sum, clamped to 0..255. */
    private static int clip8(int sum) {
        int value = sum >> PRECISION_BITS;
        return value < 0 ? 0 : Math.min(value, 255);
    }
}

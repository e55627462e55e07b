package dev.expo.extrapolation.engine.schedule;

import dev.expo.common.ExpoException;

import java.util.List;

/**
 * How alpha varies across the decoder layers. One record per kind; each checks its values when built and answers
 * "alpha of layer i of n". Tensors outside the layers get {@link #nonlayerDefault(int)} unless told otherwise.
 */
public sealed interface LayerSchedule {

    /** Alpha of decoder layer {@code layer} in a model of {@code numLayers} layers. */
    double alpha(int layer, int numLayers);

    /** What chose that alpha, for the plan ("layer group 2 of 3"). */
    String describe(int layer, int numLayers);

    /**
     * The alpha of tensors outside the decoder layers (embeddings, final norm, lm_head) when not set: the median of
     * the layer alphas, i.e. the middle group's alpha for the seed's thirds (5 / 10 / 15 -> 10).
     */
    double nonlayerDefault(int numLayers);

    /** Rejects a schedule that cannot apply to a model of that depth (e.g. a per-layer list of the wrong length). */
    default void checkDepth(int numLayers) {
    }

    /** The same alpha everywhere. */
    record Uniform(double alpha) implements LayerSchedule {
        public Uniform {
            checkFinite("alpha", alpha);
        }

        @Override
        public double alpha(int layer, int numLayers) {
            return alpha;
        }

        @Override
        public String describe(int layer, int numLayers) {
            return "uniform";
        }

        @Override
        public double nonlayerDefault(int numLayers) {
            return alpha;
        }
    }

    /**
     * Consecutive equal groups (the seed's layerwise extrapolation uses three: 5 / 10 / 15). With n layers and g
     * groups, k = floor(n / g) and layer i is in group min(i / k, g - 1): the last group takes the remainder (and,
     * when n < g, every layer).
     */
    record LayerGroups(List<Double> alphas) implements LayerSchedule {
        public LayerGroups {
            alphas = List.copyOf(alphas);
            if (alphas.isEmpty()) {
                throw ExpoException.invalidArgument("layer_groups", alphas, "needs at least one alpha");
            }
            alphas.forEach(a -> checkFinite("layer_groups", a));
        }

        public int group(int layer, int numLayers) {
            int groups = alphas.size();
            int perGroup = numLayers / groups;
            return perGroup == 0 ? groups - 1 : Math.min(layer / perGroup, groups - 1);
        }

        @Override
        public double alpha(int layer, int numLayers) {
            return alphas.get(group(layer, numLayers));
        }

        @Override
        public String describe(int layer, int numLayers) {
            return "layer group " + (group(layer, numLayers) + 1) + " of " + alphas.size();
        }

        @Override
        public double nonlayerDefault(int numLayers) {
            return median(alphas);
        }
    }

    /** One alpha per decoder layer. */
    record PerLayer(List<Double> alphas) implements LayerSchedule {
        public PerLayer {
            alphas = List.copyOf(alphas);
            if (alphas.isEmpty()) {
                throw ExpoException.invalidArgument("per_layer", alphas, "needs one alpha per decoder layer");
            }
            alphas.forEach(a -> checkFinite("per_layer", a));
        }

        @Override
        public void checkDepth(int numLayers) {
            if (alphas.size() != numLayers) {
                throw ExpoException.invalidArgument("per_layer", alphas.size() + " alphas",
                        "the model has " + numLayers + " decoder layers; give exactly one alpha per layer");
            }
        }

        @Override
        public double alpha(int layer, int numLayers) {
            return alphas.get(layer);
        }

        @Override
        public String describe(int layer, int numLayers) {
            return "per-layer alpha " + layer;
        }

        @Override
        public double nonlayerDefault(int numLayers) {
            return median(alphas);
        }
    }

    /** alpha(i) = first + (last - first) * i / (n - 1); a one-layer model gets {@code first}. */
    record LinearRamp(double first, double last) implements LayerSchedule {
        public LinearRamp {
            checkFinite("linear_ramp.first", first);
            checkFinite("linear_ramp.last", last);
        }

        @Override
        public double alpha(int layer, int numLayers) {
            return numLayers <= 1 ? first : first + (last - first) * layer / (numLayers - 1);
        }

        @Override
        public String describe(int layer, int numLayers) {
            return "linear ramp";
        }

        @Override
        public double nonlayerDefault(int numLayers) {
            return (first + last) / 2;
        }
    }

    private static double median(List<Double> values) {
        double[] sorted = values.stream().mapToDouble(Double::doubleValue).sorted().toArray();
        int n = sorted.length;
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    }

    /** Alpha is used as a float32 (as PyTorch does with a Python scalar), so it must be finite as one. */
    static void checkFinite(String field, double alpha) {
        if (!Double.isFinite(alpha)) {
            throw ExpoException.invalidArgument(field, alpha, "alpha must be a finite number");
        }
        if (Math.abs(alpha) > Float.MAX_VALUE) {
            throw ExpoException.invalidArgument(field, alpha, "alpha must fit in a float32 (|alpha| <= 3.4e38)");
        }
    }
}

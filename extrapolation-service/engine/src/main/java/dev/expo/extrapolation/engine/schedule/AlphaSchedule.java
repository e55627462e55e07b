package dev.expo.extrapolation.engine.schedule;

import dev.expo.common.ExpoException;

import java.util.List;

/**
 * The whole alpha assignment: name rules first (first match wins), then the layer schedule for tensors of decoder
 * layer i, then {@code nonlayerAlpha} (default: the layer schedule's median) for the rest.
 *
 * @param layers        may be null only if the rules cover every tensor
 * @param nonlayerAlpha null = the layer schedule's default
 */
public record AlphaSchedule(LayerSchedule layers, Double nonlayerAlpha, List<TensorRule> rules) {

    public AlphaSchedule {
        rules = List.copyOf(rules);
        if (layers == null && rules.isEmpty()) {
            throw ExpoException.invalidArgument("schedule", "{}", "give an alpha, layer_groups, per_layer alphas, "
                    + "a linear_ramp or rules");
        }
        if (nonlayerAlpha != null) {
            LayerSchedule.checkFinite("nonlayer_alpha", nonlayerAlpha);
        }
    }

    public static AlphaSchedule uniform(double alpha) {
        return new AlphaSchedule(new LayerSchedule.Uniform(alpha), null, List.of());
    }

    /** The alpha of one tensor and what chose it; {@code layer} is its decoder layer, or -1 outside the layers. */
    public Assignment assign(String tensorName, int layer, int numLayers) {
        for (int i = 0; i < rules.size(); i++) {
            TensorRule rule = rules.get(i);
            if (rule.matches(tensorName)) {
                return new Assignment(rule.alpha(), "rule " + (i + 1) + " (" + rule.describe() + ")");
            }
        }
        if (layer >= 0) {
            if (layers == null) {
                throw ExpoException.invalidArgument("schedule.rules", tensorName, "no rule matches this decoder-layer "
                        + "tensor; add a rule or a layer schedule for the rest");
            }
            return new Assignment(layers.alpha(layer, numLayers), layers.describe(layer, numLayers));
        }
        if (nonlayerAlpha != null) {
            return new Assignment(nonlayerAlpha, "nonlayer_alpha");
        }
        if (layers != null) {
            return new Assignment(layers.nonlayerDefault(numLayers), "outside the layers (default: median)");
        }
        throw ExpoException.invalidArgument("schedule.rules", tensorName, "no rule matches this tensor; add a rule "
                + "or a layer schedule for the rest");
    }

    public record Assignment(double alpha, String source) {
    }
}

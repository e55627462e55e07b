package dev.expo.extrapolation.engine.schedule;

import dev.expo.common.ExpoException;
import org.yaml.snakeyaml.LoaderOptions;
import org.yaml.snakeyaml.Yaml;
import org.yaml.snakeyaml.constructor.SafeConstructor;
import org.yaml.snakeyaml.error.MarkedYAMLException;
import org.yaml.snakeyaml.error.YAMLException;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Reads a schedule written as YAML (docs/schedules.md). The keys are the proto's field names:
 *
 * <pre>
 * layer_groups: [5, 10, 15]      # or: alpha: 12 | per_layer: [...] | linear_ramp: {first: 5, last: 15}
 * nonlayer_alpha: 10             # optional; default: the median of the layer alphas
 * rules:                         # optional; tried in order, first match wins
 *   - glob: "*embed_tokens*"
 *     alpha: 0                   # 0 copies the aligned tensor
 *   - regex: ".*\\.mlp\\..*"
 *     alpha: 8
 * </pre>
 *
 * Unknown keys, wrong types and duplicate keys are errors: a typo must not silently change a model.
 */
public final class ScheduleYaml {

    private static final Set<String> TOP_KEYS = Set.of("alpha", "layer_groups", "per_layer", "linear_ramp",
            "nonlayer_alpha", "rules");

    private ScheduleYaml() {
    }

    public static AlphaSchedule parse(String yaml) {
        Object root;
        try {
            LoaderOptions options = new LoaderOptions();
            options.setAllowDuplicateKeys(false);
            options.setMaxAliasesForCollections(10);
            root = new Yaml(new SafeConstructor(options)).load(yaml);
        } catch (MarkedYAMLException e) {
            String where = e.getProblemMark() == null ? "" : " at line " + (e.getProblemMark().getLine() + 1)
                    + ", column " + (e.getProblemMark().getColumn() + 1);
            throw ExpoException.invalidArgument("schedule is not valid YAML: " + e.getProblem() + where);
        } catch (YAMLException e) {
            throw ExpoException.invalidArgument("schedule is not valid YAML: " + firstLine(e.getMessage()));
        }
        if (!(root instanceof Map<?, ?> map)) {
            throw ExpoException.invalidArgument("schedule must be a YAML mapping, e.g. \"layer_groups: [5, 10, 15]\"");
        }
        for (Object key : map.keySet()) {
            if (!TOP_KEYS.contains(String.valueOf(key))) {
                throw ExpoException.invalidArgument("schedule has an unknown key \"" + key + "\"; the keys are "
                        + String.join(", ", TOP_KEYS.stream().sorted().toList()));
            }
        }
        List<String> layerKinds = List.of("alpha", "layer_groups", "per_layer", "linear_ramp").stream()
                .filter(map::containsKey).toList();
        if (layerKinds.size() > 1) {
            throw ExpoException.invalidArgument("schedule sets " + String.join(" and ", layerKinds)
                    + "; give only one of alpha, layer_groups, per_layer, linear_ramp");
        }
        LayerSchedule layers = null;
        if (map.containsKey("alpha")) {
            layers = new LayerSchedule.Uniform(number("alpha", map.get("alpha")));
        } else if (map.containsKey("layer_groups")) {
            layers = new LayerSchedule.LayerGroups(numbers("layer_groups", map.get("layer_groups")));
        } else if (map.containsKey("per_layer")) {
            layers = new LayerSchedule.PerLayer(numbers("per_layer", map.get("per_layer")));
        } else if (map.containsKey("linear_ramp")) {
            Map<?, ?> ramp = mapping("linear_ramp", map.get("linear_ramp"), Set.of("first", "last"));
            layers = new LayerSchedule.LinearRamp(number("linear_ramp.first", required(ramp, "first", "linear_ramp")),
                    number("linear_ramp.last", required(ramp, "last", "linear_ramp")));
        }
        Double nonlayer = map.containsKey("nonlayer_alpha") ? number("nonlayer_alpha", map.get("nonlayer_alpha"))
                : null;
        List<TensorRule> rules = new ArrayList<>();
        if (map.containsKey("rules")) {
            if (!(map.get("rules") instanceof List<?> list)) {
                throw ExpoException.invalidArgument("schedule rules must be a list of {glob|regex, alpha}");
            }
            for (int i = 0; i < list.size(); i++) {
                String where = "rules[" + i + "]";
                Map<?, ?> rule = mapping(where, list.get(i), Set.of("glob", "regex", "alpha"));
                double alpha = number(where + ".alpha", required(rule, "alpha", where));
                if (rule.containsKey("glob") == rule.containsKey("regex")) {
                    throw ExpoException.invalidArgument("schedule " + where + " needs exactly one of glob, regex");
                }
                rules.add(rule.containsKey("glob") ? TensorRule.glob(string(where + ".glob", rule.get("glob")), alpha)
                        : TensorRule.regex(string(where + ".regex", rule.get("regex")), alpha));
            }
        }
        return new AlphaSchedule(layers, nonlayer, rules);
    }

    private static Map<?, ?> mapping(String where, Object value, Set<String> keys) {
        if (!(value instanceof Map<?, ?> map)) {
            throw ExpoException.invalidArgument("schedule " + where + " must be a mapping with keys " + keys);
        }
        for (Object key : map.keySet()) {
            if (!keys.contains(String.valueOf(key))) {
                throw ExpoException.invalidArgument("schedule " + where + " has an unknown key \"" + key + "\"");
            }
        }
        return map;
    }

    private static Object required(Map<?, ?> map, String key, String where) {
        if (!map.containsKey(key)) {
            throw ExpoException.invalidArgument("schedule " + where + " needs \"" + key + "\"");
        }
        return map.get(key);
    }

    private static double number(String field, Object value) {
        if (value instanceof Number n) {
            return n.doubleValue();
        }
        throw ExpoException.invalidArgument("schedule " + field + " must be a number, not " + describe(value));
    }

    private static List<Double> numbers(String field, Object value) {
        if (!(value instanceof List<?> list)) {
            throw ExpoException.invalidArgument("schedule " + field + " must be a list of numbers, not "
                    + describe(value));
        }
        List<Double> out = new ArrayList<>();
        for (Object element : list) {
            out.add(number(field + " element", element));
        }
        return out;
    }

    private static String string(String field, Object value) {
        if (value instanceof String s) {
            return s;
        }
        throw ExpoException.invalidArgument("schedule " + field + " must be a string, not " + describe(value));
    }

    private static String describe(Object value) {
        return value == null ? "null" : "\"" + value + "\"";
    }

    private static String firstLine(String message) {
        return message == null ? "" : message.lines().findFirst().orElse("").trim();
    }
}

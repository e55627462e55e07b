package dev.expo.modeling.tokenizer;

import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import com.hubspot.jinjava.lib.filter.Filter;
import dev.expo.checkpoint.JsonDumps;

import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The {@code tojson} filter as transformers defines it for chat templates: Python's
 * {@code json.dumps(value, ensure_ascii=False, indent=indent, separators=separators, sort_keys=sort_keys)}, byte for
 * byte ({@code ", "} and {@code ": "} between items, non-ASCII text as is), so that tool schemas and arguments render
 * into prompts exactly as in Python. Jinjava's own filter writes compact JSON.
 */
final class PythonJson implements Filter {

    @Override
    public String getName() {
        return "tojson";
    }

    @Override
    public Object filter(Object value, JinjavaInterpreter interpreter, String... args) {
        return filter(value, interpreter, args, Map.of());
    }

    @Override
    public Object filter(Object value, JinjavaInterpreter interpreter, Object[] args, Map<String, Object> kwargs) {
        Object indent = kwargs.getOrDefault("indent", args.length > 0 ? args[0] : null);
        Object separators = kwargs.get("separators");
        boolean sortKeys = Boolean.TRUE.equals(kwargs.get("sort_keys"));
        String indentUnit = indent == null ? null
                : indent instanceof Number n ? " ".repeat(Math.max(0, n.intValue())) : indent.toString();
        String itemSeparator = indentUnit == null ? ", " : ",";
        String keySeparator = ": ";
        if (separators instanceof List<?> pair && pair.size() == 2) {
            itemSeparator = String.valueOf(pair.get(0));
            keySeparator = String.valueOf(pair.get(1));
        }
        StringBuilder out = new StringBuilder();
        new Writer(indentUnit, itemSeparator, keySeparator, sortKeys, out).write(value, 0);
        return out.toString();
    }

    private record Writer(String indent, String itemSeparator, String keySeparator, boolean sortKeys,
                          StringBuilder out) {

        void write(Object value, int level) {
            switch (value) {
                case null -> out.append("null");
                case Boolean b -> out.append(b ? "true" : "false");
                case Double d -> out.append(pythonFloat(d));
                case Float f -> out.append(pythonFloat(f.doubleValue()));
                case Number n -> out.append(n);
                case CharSequence s -> string(s.toString());
                case Map<?, ?> map -> {
                    List<Map.Entry<String, Object>> entries = new ArrayList<>();
                    map.forEach((k, v) -> entries.add(Map.entry(key(k), v == null ? NULL : v)));
                    if (sortKeys) {
                        entries.sort(Map.Entry.comparingByKey());
                    }
                    out.append('{');
                    for (int i = 0; i < entries.size(); i++) {
                        separator(i, level + 1);
                        string(entries.get(i).getKey());
                        out.append(keySeparator);
                        Object v = entries.get(i).getValue();
                        write(v == NULL ? null : v, level + 1);
                    }
                    close('}', entries.isEmpty(), level);
                }
                case Iterable<?> items -> {
                    List<Object> list = new ArrayList<>();
                    items.forEach(list::add);
                    out.append('[');
                    for (int i = 0; i < list.size(); i++) {
                        separator(i, level + 1);
                        write(list.get(i), level + 1);
                    }
                    close(']', list.isEmpty(), level);
                }
                case Object[] array -> write(java.util.Arrays.asList(array), level);
                default -> string(value.toString());
            }
        }

        private static final Object NULL = new Object();

        private void separator(int index, int level) {
            if (index > 0) {
                out.append(itemSeparator);
            }
            if (indent != null) {
                out.append('\n').append(indent.repeat(level));
            }
        }

        private void close(char bracket, boolean empty, int level) {
            if (indent != null && !empty) {
                out.append('\n').append(indent.repeat(level));
            }
            out.append(bracket);
        }

        /** Python's json keys: strings as they are, numbers and booleans as their JSON text, None as "null". */
        private static String key(Object k) {
            return switch (k) {
                case null -> "null";
                case Boolean b -> b ? "true" : "false";
                case Double d -> pythonFloat(d);
                default -> k.toString();
            };
        }

        private void string(String s) {
            out.append(JsonDumps.string(s, false));
        }
    }

    /** Python's float repr: the shortest round-trip digits, positional from 1e-4 up to 1e16, else with an exponent. */
    static String pythonFloat(double d) {
        if (Double.isNaN(d)) {
            return "NaN";
        }
        if (Double.isInfinite(d)) {
            return d > 0 ? "Infinity" : "-Infinity";
        }
        if (d == 0) {
            return 1 / d < 0 ? "-0.0" : "0.0";
        }
        BigDecimal exact = new BigDecimal(Double.toString(d)).stripTrailingZeros();
        String digits = exact.unscaledValue().abs().toString();
        int exponent = digits.length() - 1 - exact.scale();   // d = digits[0].digits[1..] x 10^exponent
        String sign = d < 0 ? "-" : "";
        if (exponent >= -4 && exponent < 16) {
            String plain = exact.abs().toPlainString();
            return sign + (plain.contains(".") ? plain : plain + ".0");
        }
        String mantissa = digits.length() == 1 ? digits : digits.charAt(0) + "." + digits.substring(1);
        return sign + mantissa + "e" + (exponent < 0 ? "-" : "+") + String.format("%02d", Math.abs(exponent));
    }
}

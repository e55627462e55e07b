package dev.expo.modeling.tokenizer;

import com.hubspot.jinjava.util.ObjectTruthValue;
import jinjava.de.odysseus.el.misc.NumberOperations;
import jinjava.de.odysseus.el.tree.Bindings;
import jinjava.de.odysseus.el.tree.impl.ast.AstBinary;
import jinjava.de.odysseus.el.tree.impl.ast.AstNode;
import jinjava.javax.el.ELContext;
import jinjava.javax.el.ELException;

import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The binary operators whose Python meaning Jinjava's (Java EL's) lack: {@code a and b} is an operand, not a boolean
 * ({@code {{ name and name ~ ': ' }}}); {@code *} repeats a string or a list; {@code %} formats a string
 * printf-style ({@code '<|%s|>' % role}) and is a floored modulo on numbers, as in Python ({@code -7 % 3} is 2).
 */
final class PythonOperators {

    private PythonOperators() {
    }

    /** Python's operator for Jinjava's, where they differ; the same operator otherwise. */
    static AstBinary.Operator of(AstBinary.Operator operator) {
        if (operator == AstBinary.AND) {
            return AND;
        }
        if (operator == AstBinary.MUL) {
            return MUL;
        }
        return operator == AstBinary.MOD ? MOD : operator;
    }

    private abstract static class Operator implements AstBinary.Operator {
        private final String symbol;

        Operator(String symbol) {
            this.symbol = symbol;
        }

        @Override
        public String toString() {
            return symbol;
        }
    }

    static final AstBinary.Operator AND = new Operator("and") {
        @Override
        public Object eval(Bindings bindings, ELContext context, AstNode left, AstNode right) {
            Object first = left.eval(bindings, context);
            return ObjectTruthValue.evaluate(first) ? right.eval(bindings, context) : first;
        }
    };

    static final AstBinary.Operator MUL = new Operator("*") {
        @Override
        public Object eval(Bindings bindings, ELContext context, AstNode left, AstNode right) {
            Object a = left.eval(bindings, context);
            Object b = right.eval(bindings, context);
            Object repeated = repeat(a, b);
            if (repeated == null) {
                repeated = repeat(b, a);
            }
            return repeated != null ? repeated : NumberOperations.mul(bindings, a, b);
        }
    };

    static final AstBinary.Operator MOD = new Operator("%") {
        @Override
        public Object eval(Bindings bindings, ELContext context, AstNode left, AstNode right) {
            Object a = left.eval(bindings, context);
            Object b = right.eval(bindings, context);
            if (a instanceof CharSequence format) {
                return format(format.toString(), b);
            }
            Number n = NumberOperations.mod(bindings, a, b);
            Number divisor = bindings.convert(b, Number.class);
            // Java's remainder takes the dividend's sign; Python's modulo takes the divisor's.
            if (n.doubleValue() != 0 && (n.doubleValue() < 0) != (divisor.doubleValue() < 0)) {
                return n instanceof Long || n instanceof Integer ? (Number) (n.longValue() + divisor.longValue())
                        : (Number) (n.doubleValue() + divisor.doubleValue());
            }
            return n;
        }
    };

    /** {@code sequence * count} for a string or a list and an integer, else null. */
    private static Object repeat(Object sequence, Object count) {
        if (!(count instanceof Long || count instanceof Integer)
                || !(sequence instanceof CharSequence || sequence instanceof List<?>)) {
            return null;
        }
        int times = (int) Math.max(0, Math.min(1 << 20, ((Number) count).longValue()));
        if (sequence instanceof CharSequence s) {
            return s.toString().repeat(times);
        }
        List<Object> out = new ArrayList<>();
        for (int i = 0; i < times; i++) {
            out.addAll((List<?>) sequence);
        }
        return out;
    }

    /**
     * Python's {@code format % values}: conversions s, r, d, i, f, F, e, E, x, X, o, c with flags, width and
     * precision, and %%. A list supplies one value per conversion when it has that many (Jinjava makes tuples
     * lists); any other value is the single value.
     */
    static String format(String format, Object values) {
        List<Object> args = new ArrayList<>();
        int conversions = countConversions(format);
        if (values instanceof List<?> list && list.size() == conversions && conversions != 1) {
            args.addAll(list);
        } else if (values instanceof List<?> list && conversions == 1 && list.size() == 1) {
            args.add(list.getFirst());
        } else {
            args.add(values);
        }
        StringBuilder out = new StringBuilder();
        int next = 0;
        for (int i = 0; i < format.length(); i++) {
            char c = format.charAt(i);
            if (c != '%') {
                out.append(c);
                continue;
            }
            int start = i++;
            while (i < format.length() && "-+ #0".indexOf(format.charAt(i)) >= 0) {
                i++;
            }
            while (i < format.length() && (Character.isDigit(format.charAt(i)) || format.charAt(i) == '.')) {
                i++;
            }
            if (i >= format.length()) {
                throw new ELException("incomplete format: " + format.substring(start));
            }
            char conversion = format.charAt(i);
            String spec = format.substring(start, i);   // "%-5" or "%.2"
            if (conversion == '%') {
                out.append('%');
                continue;
            }
            if (next >= args.size()) {
                throw new ELException("not enough arguments for format string");
            }
            out.append(convert(spec, conversion, args.get(next++)));
        }
        if (next < args.size()) {
            throw new ELException("not all arguments converted during string formatting");
        }
        return out.toString();
    }

    private static int countConversions(String format) {
        int n = 0;
        for (int i = 0; i < format.length(); i++) {
            if (format.charAt(i) == '%') {
                int j = i + 1;
                while (j < format.length() && "-+ #0123456789.".indexOf(format.charAt(j)) >= 0) {
                    j++;
                }
                if (j < format.length() && format.charAt(j) != '%') {
                    n++;
                }
                i = j;
            }
        }
        return n;
    }

    private static String convert(String spec, char conversion, Object value) {
        try {
            return convertChecked(spec, conversion, value);
        } catch (java.util.IllegalFormatException e) {
            throw new ELException("bad format " + spec + conversion + ": " + e.getMessage());
        }
    }

    private static String convertChecked(String spec, char conversion, Object value) {
        return switch (conversion) {
            case 's' -> pad(spec, PythonRepr.str(value));
            case 'r' -> pad(spec, PythonRepr.repr(value));
            case 'c' -> pad(spec, value instanceof Number n ? Character.toString(n.intValue()) : String.valueOf(value));
            case 'd', 'i' -> String.format(Locale.ROOT, spec + "d", integer(value));
            case 'x', 'X', 'o' -> String.format(Locale.ROOT, spec + conversion, integer(value));
            case 'f', 'F', 'e', 'E' -> String.format(Locale.ROOT, spec + conversion, number(value).doubleValue());
            default -> throw new ELException("unsupported format character '" + conversion + "'");
        };
    }

    /** %s with flags, width and precision: a precision cuts, a width pads (left-aligned with '-'). */
    private static String pad(String spec, String text) {
        String s = spec.substring(1).replace("#", "").replace("+", "").replace(" ", "").replace("0", "");
        boolean left = spec.contains("-");
        s = s.replace("-", "");
        int dot = s.indexOf('.');
        if (dot >= 0) {
            int precision = dot + 1 < s.length() ? Integer.parseInt(s.substring(dot + 1)) : 0;
            text = text.codePointCount(0, text.length()) > precision
                    ? text.substring(0, text.offsetByCodePoints(0, precision)) : text;
            s = s.substring(0, dot);
        }
        int width = s.isEmpty() ? 0 : Integer.parseInt(s);
        int missing = width - text.codePointCount(0, text.length());
        return missing <= 0 ? text : left ? text + " ".repeat(missing) : " ".repeat(missing) + text;
    }

    private static long integer(Object value) {
        Number n = number(value);
        // Python's %d truncates a float toward zero.
        return n instanceof Double || n instanceof Float ? new BigDecimal(n.doubleValue()).longValue() : n.longValue();
    }

    private static Number number(Object value) {
        if (value instanceof Number n) {
            return n;
        }
        if (value instanceof Boolean b) {
            return b ? 1 : 0;
        }
        throw new ELException("a number is required, not "
                + (value == null ? "None" : value.getClass().getSimpleName()));
    }
}

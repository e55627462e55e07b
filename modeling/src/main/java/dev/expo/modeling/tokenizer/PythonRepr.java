package dev.expo.modeling.tokenizer;

import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import com.hubspot.jinjava.lib.expression.ExpressionStrategy;
import com.hubspot.jinjava.lib.filter.EscapeFilter;
import com.hubspot.jinjava.tree.output.RenderedOutputNode;
import com.hubspot.jinjava.tree.parse.ExpressionToken;

import java.util.Collection;
import java.util.Iterator;
import java.util.Map;

/**
 * Values printed as Python prints them, for {@code {{ ... }}} in chat templates: {@code True} / {@code False}, and
 * lists and dicts as Python's repr ({@code [True, None, 'it\'s']} is {@code [True, None, "it's"]}). Jinjava prints
 * {@code true} and {@code null} inside collections. Not covered: a bare None prints empty, because Jinjava cannot
 * tell None from an undefined value (which Jinja2 prints empty).
 */
final class PythonRepr implements ExpressionStrategy {
    private static final long serialVersionUID = 1L;

    /** {@code {{ expression }}}: evaluated once, printed as Python's str() prints the value. */
    @Override
    public RenderedOutputNode interpretOutput(ExpressionToken token, JinjavaInterpreter interpreter) {
        Object value = interpreter.resolveELExpression(token.getExpr(), token.getLineNumber());
        String text = value instanceof Boolean || value instanceof Collection<?> || value instanceof Map<?, ?>
                ? str(value) : interpreter.getAsString(value);
        if (interpreter.getContext().isAutoEscape()) {
            text = EscapeFilter.escapeHtmlEntities(text);
        }
        return new RenderedOutputNode(text);
    }

    /** Python's str(): a string as itself, anything else as its repr. */
    static String str(Object value) {
        return value instanceof CharSequence || value instanceof Character ? value.toString() : repr(value);
    }

    static String repr(Object value) {
        return switch (value) {
            case null -> "None";
            case Boolean b -> b ? "True" : "False";
            case Double d when d.isNaN() -> "nan";
            case Double d when d.isInfinite() -> d > 0 ? "inf" : "-inf";
            case Double d -> PythonJson.pythonFloat(d);
            case CharSequence s -> string(s.toString());
            case Character c -> string(c.toString());   // the items of `'abc' | list`
            case Map.Entry<?, ?> e -> "(" + repr(e.getKey()) + ", " + repr(e.getValue()) + ")";
            case Map<?, ?> m -> {
                StringBuilder out = new StringBuilder("{");
                for (Iterator<? extends Map.Entry<?, ?>> it = m.entrySet().iterator(); it.hasNext(); ) {
                    Map.Entry<?, ?> e = it.next();
                    out.append(repr(e.getKey())).append(": ").append(repr(e.getValue()));
                    out.append(it.hasNext() ? ", " : "");
                }
                yield out.append('}').toString();
            }
            case Collection<?> c -> {
                StringBuilder out = new StringBuilder("[");
                for (Iterator<?> it = c.iterator(); it.hasNext(); ) {
                    out.append(repr(it.next())).append(it.hasNext() ? ", " : "");
                }
                yield out.append(']').toString();
            }
            default -> value.toString();
        };
    }

    /** Python's repr of a str: single quotes unless it holds ' and no ", with Python's escapes. */
    private static String string(String s) {
        char quote = s.indexOf('\'') >= 0 && s.indexOf('"') < 0 ? '"' : '\'';
        StringBuilder out = new StringBuilder().append(quote);
        s.codePoints().forEach(c -> {
            if (c == quote || c == '\\') {
                out.append('\\').appendCodePoint(c);
            } else if (c == '\n') {
                out.append("\\n");
            } else if (c == '\r') {
                out.append("\\r");
            } else if (c == '\t') {
                out.append("\\t");
            } else if (c < 0x20 || c == 0x7f) {
                out.append(String.format("\\x%02x", c));
            } else if (c >= 0x80 && !printable(c)) {
                out.append(c <= 0xff ? String.format("\\x%02x", c)
                        : c <= 0xffff ? String.format("\\u%04x", c) : String.format("\\U%08x", c));
            } else {
                out.appendCodePoint(c);
            }
        });
        return out.append(quote).toString();
    }

    /** Python's str.isprintable for one character: not a control, format, separator (but space) or unassigned. */
    private static boolean printable(int c) {
        return switch (Character.getType(c)) {
            case Character.CONTROL, Character.FORMAT, Character.SURROGATE, Character.PRIVATE_USE, Character.UNASSIGNED,
                 Character.LINE_SEPARATOR, Character.PARAGRAPH_SEPARATOR, Character.SPACE_SEPARATOR -> false;
            default -> true;
        };
    }
}

package dev.expo.modeling.tokenizer;

import com.hubspot.jinjava.el.ExtendedSyntaxBuilder;
import com.hubspot.jinjava.el.ext.AstNamedParameter;
import com.hubspot.jinjava.el.ext.ExtendedParser;
import jinjava.de.odysseus.el.tree.Bindings;
import jinjava.de.odysseus.el.tree.impl.Parser;
import jinjava.de.odysseus.el.tree.impl.Scanner.ScanException;
import jinjava.de.odysseus.el.tree.impl.Scanner.Symbol;
import jinjava.de.odysseus.el.tree.impl.ast.AstBinary;
import jinjava.de.odysseus.el.tree.impl.ast.AstBracket;
import jinjava.de.odysseus.el.tree.impl.ast.AstDot;
import jinjava.de.odysseus.el.tree.impl.ast.AstIdentifier;
import jinjava.de.odysseus.el.tree.impl.ast.AstNode;
import jinjava.de.odysseus.el.tree.impl.ast.AstParameters;
import jinjava.de.odysseus.el.tree.impl.ast.AstRightValue;
import jinjava.javax.el.ELContext;
import jinjava.javax.el.ELException;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static jinjava.de.odysseus.el.tree.impl.Builder.Feature.METHOD_INVOCATIONS;
import static jinjava.de.odysseus.el.tree.impl.Builder.Feature.NULL_PROPERTIES;

/**
 * Chat-template expressions parsed as Jinja2 parses them where Jinjava's grammar differs:
 * <ul>
 *   <li>a slice with a step ({@code messages[::-1]}: Qwen3's templates walk the conversation backwards that way) and
 *   a string indexed by position ({@code content[0]}, {@code content[-1]}), with Python's semantics: positions count
 *   code points, negative ones count from the end, a slice clamps to the sequence, and an index past it is undefined
 *   (empty, as Jinja2 prints it);</li>
 *   <li>a keyword argument's value as a whole expression: Jinjava parsed {@code namespace(last=messages|length - 1)}
 *   as {@code (last=messages|length) - 1} and failed (Qwen3's templates say exactly that);</li>
 *   <li>Python's {@code and}, {@code *} and {@code %} ({@link PythonOperators}), chained comparisons
 *   ({@code a < b < c}) and tests after filters ({@code messages | length is even}).</li>
 * </ul>
 *
 * <p>Jinjava builds its parser from a {@link jinjava.de.odysseus.el.tree.TreeBuilder} named by class, so this is
 * that builder ({@link Syntax}) and its parser; everything else is Jinjava's own.
 */
final class PythonSyntax {

    private PythonSyntax() {
    }

    /** The tree builder Jinjava instantiates by name (public, with Jinjava's constructor). */
    public static final class Syntax extends ExtendedSyntaxBuilder {
        private static final long serialVersionUID = 1L;

        public Syntax(Feature... features) {
            super(features);
        }

        @Override
        protected Parser createParser(String expression) {
            return new PythonParser(this, expression);
        }
    }

    /**
     * Jinjava's parser with Python's postfix subscripts. Jinjava's own {@code value()} also applies filters and tests
     * to a value when operator precedence is not natural; templates are parsed with natural precedence (filters
     * bind at {@code filter()}), so here the postfix chain is all there is.
     */
    static final class PythonParser extends ExtendedParser {

        PythonParser(jinjava.de.odysseus.el.tree.impl.Builder context, String input) {
            super(context, input);
        }

        @Override
        protected AstNode value() throws ScanException, ParseException {
            boolean lvalue = true;
            AstNode v = nonliteral();
            if (v == null) {
                v = literal();
                if (v == null) {
                    return null;
                }
                lvalue = false;
            }
            while (true) {
                switch (getToken().getSymbol()) {
                    case DOT -> {
                        consumeToken();
                        AstDot dot = createAstDot(v, consumeToken(Symbol.IDENTIFIER).getImage(), lvalue);
                        v = callable() ? createAstMethod(dot, params()) : dot;
                    }
                    case LBRACK -> v = subscript(v, lvalue);
                    default -> {
                        return v;
                    }
                }
            }
        }

        /**
         * Comparisons as Python chains them: {@code a < b < c} is {@code a < b and b < c} (Jinjava stopped after
         * one and failed to parse the rest).
         */
        @Override
        protected AstNode cmp(boolean required) throws ScanException, ParseException {
            AstNode first = super.cmp(required);
            AstNode chain = first;
            AstNode right = first instanceof AstBinary binary && ORDER.contains(binary.getOperator())
                    ? binary.getChild(1) : null;
            while (right != null && ORDER_SYMBOLS.containsKey(getToken().getSymbol())) {
                AstBinary.Operator operator = ORDER_SYMBOLS.get(consumeToken().getSymbol());
                AstNode next = add(true);
                chain = createAstBinary(chain, createAstBinary(right, next, operator), AstBinary.AND);
                right = next;
            }
            return chain;
        }

        /**
         * A test after filters, {@code messages | length is even}: Jinjava applies tests only to an unfiltered
         * value.
         */
        @Override
        protected AstNode filter(boolean required) throws ScanException, ParseException {
            AstNode v = super.filter(required);
            if (v != null && "is".equals(getToken().getImage()) && isWord(lookahead(0).getImage())) {
                consumeToken();
                boolean negated = "not".equals(getToken().getImage()) && isWord(lookahead(0).getImage());
                if (negated) {
                    consumeToken();
                }
                String test = consumeToken().getImage();
                List<AstNode> params = new ArrayList<>(List.of(v, interpreter()));
                AstNode argument = value();
                if (argument != null) {
                    params.add(argument);
                }
                v = createAstMethod(createAstDot(identifier(EXPTEST_PREFIX + test),
                        negated ? "evaluateNegated" : "evaluate", true), createAstParameters(params));
            }
            return v;
        }

        private static boolean isWord(String image) {
            return image != null && !image.isEmpty() && Character.isLetter(image.charAt(0));
        }

        @Override
        protected AstBinary createAstBinary(AstNode left, AstNode right, AstBinary.Operator operator) {
            return super.createAstBinary(left, right, PythonOperators.of(operator));
        }

        /** An argument list, or a list literal: each item an expression, or {@code name=expression}. */
        @Override
        protected AstParameters params(Symbol left, Symbol right) throws ScanException, ParseException {
            consumeToken(left);
            List<AstNode> items = new ArrayList<>();
            while (getToken().getSymbol() != right) {
                if (getToken().getSymbol() == Symbol.IDENTIFIER && "=".equals(lookahead(0).getImage())) {
                    AstIdentifier name = identifier(consumeToken().getImage());
                    consumeToken();
                    items.add(new AstNamedParameter(name, expr(true)));
                } else {
                    items.add(expr(true));
                }
                if (getToken().getSymbol() != Symbol.COMMA) {
                    break;
                }
                consumeToken();   // Python allows a comma after the last item
            }
            consumeToken(right);
            return createAstParameters(items);
        }

        private boolean callable() {
            return getToken().getSymbol() == Symbol.LPAREN && context.isEnabled(METHOD_INVOCATIONS);
        }

        /** {@code [i]}, {@code [start:stop]} or {@code [start:stop:step]}, any part of a slice left out. */
        private AstNode subscript(AstNode base, boolean lvalue) throws ScanException, ParseException {
            consumeToken(Symbol.LBRACK);
            AstNode start = expr(false);
            if (getToken().getSymbol() == Symbol.RBRACK) {
                if (start == null) {
                    fail("an index");
                }
                consumeToken();
                AstBracket index = new Index(base, start, lvalue, !context.isEnabled(NULL_PROPERTIES));
                return callable() ? createAstMethod(index, params()) : index;
            }
            consumeToken(Symbol.COLON);
            AstNode stop = expr(false);
            AstNode step = null;
            if (getToken().getSymbol() == Symbol.COLON) {
                consumeToken();
                step = expr(false);
            }
            consumeToken(Symbol.RBRACK);
            return new Slice(base, start, stop, step);
        }
    }

    private static final Map<Symbol, AstBinary.Operator> ORDER_SYMBOLS = Map.of(Symbol.LT, AstBinary.LT,
            Symbol.LE, AstBinary.LE, Symbol.GT, AstBinary.GT, Symbol.GE, AstBinary.GE);
    private static final java.util.Set<AstBinary.Operator> ORDER = java.util.Set.copyOf(ORDER_SYMBOLS.values());

    /** {@code base[i]}: a string by code point as Python indexes it; anything else as Jinjava resolves it. */
    static final class Index extends AstBracket {

        Index(AstNode base, AstNode property, boolean lvalue, boolean strict) {
            super(base, property, lvalue, strict);
        }

        @Override
        public Object eval(Bindings bindings, ELContext context) {
            Object base = prefix.eval(bindings, context);
            if (base instanceof CharSequence chars) {
                Object position = property.eval(bindings, context);
                if (position instanceof Number n) {
                    int[] cps = chars.toString().codePoints().toArray();
                    int i = integer(n, "string index");
                    i = i < 0 ? i + cps.length : i;
                    return i >= 0 && i < cps.length ? new String(cps, i, 1) : null;
                }
            }
            return super.eval(bindings, context);
        }
    }

    /** {@code base[start:stop:step]} over a list or a string, with Python's slice semantics. */
    static final class Slice extends AstRightValue {
        private final AstNode base;
        private final AstNode start;
        private final AstNode stop;
        private final AstNode step;

        Slice(AstNode base, AstNode start, AstNode stop, AstNode step) {
            this.base = base;
            this.start = start;
            this.stop = stop;
            this.step = step;
        }

        @Override
        public Object eval(Bindings bindings, ELContext context) {
            Object value = base.eval(bindings, context);
            Integer from = bound(start, bindings, context);
            Integer to = bound(stop, bindings, context);
            Integer by = bound(step, bindings, context);
            if (value instanceof CharSequence chars) {
                int[] cps = chars.toString().codePoints().toArray();
                StringBuilder out = new StringBuilder();
                for (int i : positions(cps.length, from, to, by)) {
                    out.appendCodePoint(cps[i]);
                }
                return out.toString();
            }
            if (value instanceof List<?> list) {
                List<Object> out = new ArrayList<>();
                for (int i : positions(list.size(), from, to, by)) {
                    out.add(list.get(i));
                }
                return out;
            }
            if (value == null) {
                return null;
            }
            throw new ELException("cannot slice a " + value.getClass().getSimpleName());
        }

        private static Integer bound(AstNode node, Bindings bindings, ELContext context) {
            if (node == null) {
                return null;
            }
            Object v = node.eval(bindings, context);
            if (v == null) {
                return null;   // Python: x[None:2] is x[:2]
            }
            if (!(v instanceof Number n)) {
                throw new ELException("slice indices must be integers or None, not " + v.getClass().getSimpleName());
            }
            return integer(n, "slice index");
        }

        @Override
        public void appendStructure(StringBuilder b, Bindings bindings) {
            base.appendStructure(b, bindings);
            b.append('[');
            appendPart(b, start, bindings);
            b.append(':');
            appendPart(b, stop, bindings);
            if (step != null) {
                b.append(':');
                step.appendStructure(b, bindings);
            }
            b.append(']');
        }

        private static void appendPart(StringBuilder b, AstNode node, Bindings bindings) {
            if (node != null) {
                node.appendStructure(b, bindings);
            }
        }

        @Override
        public String toString() {
            return "[:]";
        }

        @Override
        public int getCardinality() {
            return 4;
        }

        @Override
        public AstNode getChild(int i) {
            return switch (i) {
                case 0 -> base;
                case 1 -> start;
                case 2 -> stop;
                case 3 -> step;
                default -> null;
            };
        }
    }

    /** The positions {@code seq[start:stop:step]} takes from a sequence of {@code length} (Python's slice.indices). */
    static int[] positions(int length, Integer start, Integer stop, Integer step) {
        int by = step == null ? 1 : step;
        if (by == 0) {
            throw new ELException("slice step cannot be zero");
        }
        int lower = by > 0 ? 0 : -1;
        int upper = by > 0 ? length : length - 1;
        int from = start == null ? (by > 0 ? lower : upper) : clamp(start, length, lower, upper);
        int to = stop == null ? (by > 0 ? upper : lower) : clamp(stop, length, lower, upper);
        int count = by > 0 ? Math.max(0, (to - from + by - 1) / by) : Math.max(0, (from - to - by - 1) / -by);
        int[] out = new int[count];
        for (int k = 0; k < count; k++) {
            out[k] = from + k * by;
        }
        return out;
    }

    private static int clamp(int index, int length, int lower, int upper) {
        int i = index < 0 ? index + length : index;
        return Math.max(lower, Math.min(upper, i));
    }

    private static int integer(Number n, String what) {
        double d = n.doubleValue();
        if (d != Math.rint(d)) {
            throw new ELException(what + " must be an integer, not " + n);
        }
        return (int) Math.max(Integer.MIN_VALUE / 2, Math.min(Integer.MAX_VALUE / 2, n.longValue()));
    }
}

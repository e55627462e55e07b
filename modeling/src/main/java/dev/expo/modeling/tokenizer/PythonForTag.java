package dev.expo.modeling.tokenizer;

import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import com.hubspot.jinjava.interpret.JinjavaInterpreter.InterpreterScopeClosable;
import com.hubspot.jinjava.interpret.NullValue;
import com.hubspot.jinjava.interpret.TemplateSyntaxException;
import com.hubspot.jinjava.lib.tag.ElseTag;
import com.hubspot.jinjava.lib.tag.ForTag;
import com.hubspot.jinjava.tree.Node;
import com.hubspot.jinjava.tree.TagNode;
import com.hubspot.jinjava.tree.parse.TagToken;
import com.hubspot.jinjava.util.ForLoop;
import com.hubspot.jinjava.util.LengthLimitingStringBuilder;
import com.hubspot.jinjava.util.ObjectIterator;
import com.hubspot.jinjava.util.ObjectTruthValue;
import org.apache.commons.lang3.tuple.Pair;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * Jinja2's {@code for} as chat templates use it, where Jinjava's differs: a filter on the items
 * ({@code {% for m in messages if m.role != 'system' %}}, with {@code loop.index} counting the kept ones; Jinjava
 * read the {@code if} as part of the expression and kept every item), an {@code {% else %}} block rendered when
 * nothing was iterated (Jinjava rendered it never), and {@code loop.previtem} / {@code loop.nextitem} (undefined in
 * Jinjava). Loop variables, {@code loop}, break and continue behave as in Jinjava's tag.
 */
final class PythonForTag extends ForTag {
    private static final long serialVersionUID = 1L;

    @Override
    public String interpretUnchecked(TagNode tagNode, JinjavaInterpreter interpreter) {
        Pair<List<String>, String> varsAndExpression = getLoopVarsAndExpression((TagToken) tagNode.getMaster());
        List<String> vars = varsAndExpression.getLeft();
        String[] iterableAndFilter = splitFilter(varsAndExpression.getRight());
        if (iterableAndFilter[0].isBlank()) {
            throw new TemplateSyntaxException(tagNode.getHelpers().trim(), "'for' has nothing to iterate over",
                    tagNode.getLineNumber(), tagNode.getStartPosition());
        }
        Object iterable = interpreter.resolveELExpression(iterableAndFilter[0], tagNode.getLineNumber());

        // The first {% else %} among the loop's own children starts the block for an empty loop.
        List<Node> children = tagNode.getChildren();
        int split = children.size();
        for (int i = 0; i < children.size() && split == children.size(); i++) {
            if (children.get(i) instanceof TagNode tag && tag.getTag() instanceof ElseTag) {
                split = i;
            }
        }
        List<Node> body = children.subList(0, split);
        List<Node> orElse = children.subList(Math.min(split + 1, children.size()), children.size());

        interpreter.getContext().addNonMetaContextVariables(vars);
        try (InterpreterScopeClosable scope = interpreter.enterScope()) {
            List<Object> items = new ArrayList<>();
            ForLoop source = ObjectIterator.getLoop(iterable);
            while (source.hasNext()) {
                Object item = interpreter.wrap(source.next());
                if (iterableAndFilter[1] == null) {
                    items.add(item);
                } else {
                    bind(interpreter, vars, item);
                    Object keep = interpreter.resolveELExpression(iterableAndFilter[1], tagNode.getLineNumber());
                    if (ObjectTruthValue.evaluate(keep)) {
                        items.add(item);
                    }
                }
            }
            LengthLimitingStringBuilder out = new LengthLimitingStringBuilder(
                    interpreter.getConfig().getMaxOutputSize());
            if (items.isEmpty()) {
                for (Node node : orElse) {
                    out.append(node.render(interpreter));
                }
                return out.toString();
            }
            Loop loop = new Loop(items);
            interpreter.getContext().put(LOOP, loop);
            while (loop.hasNext()) {
                bind(interpreter, vars, loop.next());
                for (Node node : body) {
                    out.append(node.render(interpreter));
                    if (loop.isContinued()) {
                        break;   // {% continue %}: the rest of this pass is skipped
                    }
                }
            }
            return out.toString();
        } finally {
            interpreter.getContext().removeNonMetaContextVariables(vars);
        }
    }

    /** Binds the loop variables to an item: one name takes it whole, several unpack a pair or a list. */
    private static void bind(JinjavaInterpreter interpreter, List<String> vars, Object item) {
        if (vars.size() == 1) {
            // As Jinjava's keepNullableLoopValues: a None item must hide an outer variable of the same name.
            boolean hides = item == null && interpreter.getContext().get(vars.get(0)) != null;
            interpreter.getContext().put(vars.get(0), hides ? NullValue.INSTANCE : item);
            return;
        }
        List<?> parts = item instanceof Map.Entry<?, ?> entry ? Arrays.asList(entry.getKey(), entry.getValue())
                : item instanceof List<?> list ? list : null;
        if (parts == null || parts.size() != vars.size()) {
            throw new IllegalArgumentException("cannot unpack " + (item == null ? "None" : item) + " into "
                    + String.join(", ", vars));
        }
        for (int i = 0; i < vars.size(); i++) {
            interpreter.getContext().put(vars.get(i), parts.get(i));
        }
    }

    /**
     * Splits "items if condition" at its top-level {@code if}: Jinja2's for takes no conditional expression after
     * {@code in} (one must be parenthesized), so an {@code if} outside brackets and strings starts the filter.
     */
    static String[] splitFilter(String expression) {
        int depth = 0;
        char quote = 0;
        for (int i = 0; i < expression.length(); i++) {
            char c = expression.charAt(i);
            if (quote != 0) {
                if (c == '\\') {
                    i++;
                } else if (c == quote) {
                    quote = 0;
                }
            } else if (c == '\'' || c == '"') {
                quote = c;
            } else if (c == '(' || c == '[' || c == '{') {
                depth++;
            } else if (c == ')' || c == ']' || c == '}') {
                depth--;
            } else if (depth == 0 && expression.startsWith("if", i) && boundary(expression, i - 1)
                    && boundary(expression, i + 2)) {
                return new String[] {expression.substring(0, i).trim(), expression.substring(i + 2).trim()};
            }
        }
        return new String[] {expression.trim(), null};
    }

    private static boolean boundary(String s, int at) {
        return at < 0 || at >= s.length() || !(Character.isLetterOrDigit(s.charAt(at)) || s.charAt(at) == '_');
    }

    /** Jinjava's loop object over the kept items, plus Jinja2's previtem and nextitem (undefined at the ends). */
    public static final class Loop extends ForLoop {
        private final List<Object> items;

        Loop(List<Object> items) {
            super(items.iterator(), items.size());
            this.items = items;
        }

        public Object getPrevitem() {
            int i = getIndex0();
            return i > 0 && i <= items.size() ? items.get(i - 1) : null;
        }

        public Object getNextitem() {
            int i = getIndex0();
            return i >= 0 && i + 1 < items.size() ? items.get(i + 1) : null;
        }
    }
}

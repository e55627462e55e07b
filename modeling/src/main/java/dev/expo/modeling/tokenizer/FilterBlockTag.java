package dev.expo.modeling.tokenizer;

import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import com.hubspot.jinjava.interpret.JinjavaInterpreter.InterpreterScopeClosable;
import com.hubspot.jinjava.lib.tag.Tag;
import com.hubspot.jinjava.tree.TagNode;

/**
 * Jinja2's {@code {% filter upper %}...{% endfilter %}}, which Jinjava lacks: the block's output passed through the
 * filters named (a chain, with arguments, as after {@code |}).
 */
final class FilterBlockTag implements Tag {
    private static final long serialVersionUID = 1L;
    private static final String BODY = "__filter_block_body__";

    @Override
    public String getName() {
        return "filter";
    }

    @Override
    public String interpret(TagNode tagNode, JinjavaInterpreter interpreter) {
        String body = GenerationTag.renderChildren(tagNode, interpreter);
        try (InterpreterScopeClosable scope = interpreter.enterScope()) {
            interpreter.getContext().put(BODY, body);
            Object filtered = interpreter.resolveELExpression(BODY + " | " + tagNode.getHelpers().trim(),
                    tagNode.getLineNumber());
            return PythonRepr.str(filtered);
        }
    }
}

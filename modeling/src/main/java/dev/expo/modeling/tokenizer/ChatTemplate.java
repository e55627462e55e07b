package dev.expo.modeling.tokenizer;

import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.LegacyOverrides;
import com.hubspot.jinjava.el.JinjavaInterpreterResolver;
import com.hubspot.jinjava.el.TruthyTypeConverter;
import com.hubspot.jinjava.interpret.Context;
import com.hubspot.jinjava.interpret.FatalTemplateErrorsException;
import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import com.hubspot.jinjava.interpret.JinjavaInterpreterFactory;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import dev.expo.common.ExpoException;
import jinjava.de.odysseus.el.ExpressionFactoryImpl;
import jinjava.de.odysseus.el.tree.TreeBuilder;
import jinjava.javax.el.CompositeELResolver;
import jinjava.javax.el.ExpressionFactory;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;

/**
 * A Hugging Face chat template (Jinja, from chat_template.jinja or tokenizer_config.json) rendered by a real Jinja
 * engine set up as transformers sets up Jinja2: trim_blocks and lstrip_blocks, whitespace control on expressions and
 * comments ({@code {{- x -}}}, {@code {#- c #}}), Python's operator precedence and {@code str} methods
 * ({@link PythonStrings}), slices, string indexes, keyword arguments, chained comparisons, tests after filters and
 * Python's and/%/* ({@link PythonSyntax}), loop filters, loop else and previtem/nextitem ({@link PythonForTag}),
 * filter blocks ({@link FilterBlockTag}), transformers' {@code tojson} ({@link PythonJson}), the functions
 * raise_exception and strftime_now, and the variables messages, add_generation_prompt and the special tokens; values
 * print as Python prints them ({@link PythonRepr}).
 */
public final class ChatTemplate {

    /** One turn: role "system", "user" or "assistant". */
    public record Message(String role, String content) {
    }

    private final String template;
    private final Jinjava jinja;

    public ChatTemplate(String template) {
        this.template = template;
        CompositeELResolver resolver = new CompositeELResolver();
        resolver.add(new PythonStrings());
        resolver.add(JinjavaInterpreterResolver.DEFAULT_RESOLVER_READ_ONLY);
        this.jinja = new PythonJinjava(JinjavaConfig.newBuilder()
                .withElResolver(resolver)
                .withTrimBlocks(true)
                .withLstripBlocks(true)
                .withFailOnUnknownTokens(false)
                // A message's text is data: "{{ 7*7 }}" in it stays as written (Jinjava would render it again).
                .withNestedInterpretationEnabled(false)
                .withInterperterFactory(new PythonOutput())
                // Each of these is Jinja2's behaviour where Jinjava's default differs; templates are written for Jinja2.
                .withLegacyOverrides(LegacyOverrides.newBuilder()
                        .withUseTrimmingForNotesAndExpressions(true)
                        .withParseWhitespaceControlStrictly(true)
                        .withUseNaturalOperatorPrecedence(true)
                        .withUsePyishObjectMapper(true)
                        .withIterateOverMapKeys(true)
                        .withEvaluateMapKeys(true)
                        .withKeepNullableLoopValues(true)
                        .withAllowAdjacentTextNodes(true)
                        .build())
                .build());
        jinja.getGlobalContext().registerFunction(new ELFunctionDefinition("", "raise_exception",
                ChatTemplate.class, "raiseException", String.class));
        jinja.getGlobalContext().registerFunction(new ELFunctionDefinition("", "strftime_now",
                ChatTemplate.class, "strftimeNow", String.class));
        jinja.getGlobalContext().registerFilter(new PythonJson());
        jinja.getGlobalContext().registerTag(new GenerationTag());
        jinja.getGlobalContext().registerTag(new PythonForTag());
        jinja.getGlobalContext().registerTag(new FilterBlockTag());
    }

    /** Interpreters printing {@code {{ }}} values as Python does ({@link PythonRepr}): set on each render's context. */
    private static final class PythonOutput extends JinjavaInterpreterFactory {
        @Override
        public JinjavaInterpreter newInstance(Jinjava jinjava, Context context, JinjavaConfig config) {
            context.setExpressionStrategy(new PythonRepr());
            return super.newInstance(jinjava, context, config);
        }
    }

    /** Jinjava parsing expressions as Jinja2 does ({@link PythonSyntax}). */
    private static final class PythonJinjava extends Jinjava {
        private static final ExpressionFactory EXPRESSIONS = expressions();

        PythonJinjava(JinjavaConfig config) {
            super(config);
        }

        /** Built as Jinjava builds its own (a tree builder named by class, its type converter), with ours. */
        private static ExpressionFactory expressions() {
            Properties properties = new Properties();
            properties.setProperty(TreeBuilder.class.getName(), PythonSyntax.Syntax.class.getName());
            return new ExpressionFactoryImpl(properties, new TruthyTypeConverter());
        }

        @Override
        public ExpressionFactory getExpressionFactory() {
            return EXPRESSIONS;
        }
    }

    /** Called by templates that reject a conversation (e.g. roles not alternating). */
    public static String raiseException(String message) {
        throw ExpoException.invalidArgument("chat template: " + message);
    }

    /** Today's date and time in a C strftime format (Llama 3.2's templates put the date in the system turn). */
    public static String strftimeNow(String format) {
        return Strftime.format(format, java.time.LocalDateTime.now());
    }

    public String render(List<Message> messages, boolean addGenerationPrompt, String bosToken, String eosToken) {
        Map<String, String> specialTokens = new HashMap<>();
        specialTokens.put("bos_token", bosToken == null ? "" : bosToken);
        specialTokens.put("eos_token", eosToken == null ? "" : eosToken);
        return render(messages, addGenerationPrompt, specialTokens);
    }

    /**
     * Renders a conversation with the tokenizer's special tokens as variables ({@code bos_token}, {@code eos_token},
     * {@code unk_token}, ...), as transformers passes them.
     */
    public String render(List<Message> messages, boolean addGenerationPrompt, Map<String, String> specialTokens) {
        List<Map<String, Object>> turns = new ArrayList<>();
        for (Message message : messages) {
            Map<String, Object> turn = new LinkedHashMap<>();
            turn.put("role", message.role());
            turn.put("content", message.content());
            turns.add(turn);
        }
        Map<String, Object> context = new HashMap<>(specialTokens);
        context.put("messages", turns);
        context.put("add_generation_prompt", addGenerationPrompt);
        // Templates test "strftime_now is defined" before calling it (Llama 3.2); Jinja2 sees its globals as defined.
        context.put("strftime_now", "strftime_now");
        context.put("raise_exception", "raise_exception");
        try {
            return jinja.render(template, context);
        } catch (FatalTemplateErrorsException e) {
            // raise_exception's message, wherever Jinjava wrapped it
            for (com.hubspot.jinjava.interpret.TemplateError error : e.getErrors()) {
                for (Throwable t = error.getException(); t != null; t = t.getCause()) {
                    if (t instanceof ExpoException expo) {
                        throw expo;
                    }
                }
            }
            for (Throwable t = e.getCause(); t != null; t = t.getCause()) {
                if (t instanceof ExpoException expo) {
                    throw expo;
                }
            }
            throw ExpoException.invalidArgument("the chat template failed to render: " + e.getMessage());
        }
    }
}

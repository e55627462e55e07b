package dev.expo.modeling.tokenizer;

import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.interpret.FatalTemplateErrorsException;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import dev.expo.common.ExpoException;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A Hugging Face chat template (Jinja, from tokenizer_config.json) rendered by a real Jinja engine with the settings
 * transformers uses: trim_blocks and lstrip_blocks, the variables messages, add_generation_prompt, bos_token,
 * eos_token, and the raise_exception function.
 */
public final class ChatTemplate {

    /** One turn: role "system", "user" or "assistant". */
    public record Message(String role, String content) {
    }

    private final String template;
    private final Jinjava jinja;

    public ChatTemplate(String template) {
        this.template = template;
        this.jinja = new Jinjava(JinjavaConfig.newBuilder()
                .withTrimBlocks(true)
                .withLstripBlocks(true)
                .withFailOnUnknownTokens(false)
                .build());
        jinja.getGlobalContext().registerFunction(new ELFunctionDefinition("", "raise_exception",
                ChatTemplate.class, "raiseException", String.class));
    }

    /** Called by templates that reject a conversation (e.g. roles not alternating). */
    public static String raiseException(String message) {
        throw ExpoException.invalidArgument("chat template: " + message);
    }

    public String render(List<Message> messages, boolean addGenerationPrompt, String bosToken, String eosToken) {
        List<Map<String, Object>> turns = new ArrayList<>();
        for (Message message : messages) {
            Map<String, Object> turn = new LinkedHashMap<>();
            turn.put("role", message.role());
            turn.put("content", message.content());
            turns.add(turn);
        }
        Map<String, Object> context = new HashMap<>();
        context.put("messages", turns);
        context.put("add_generation_prompt", addGenerationPrompt);
        context.put("bos_token", bosToken == null ? "" : bosToken);
        context.put("eos_token", eosToken == null ? "" : eosToken);
        try {
            return jinja.render(template, context);
        } catch (FatalTemplateErrorsException e) {
            Throwable cause = e.getCause();
            if (cause instanceof ExpoException expo) {
                throw expo;
            }
            throw ExpoException.invalidArgument("the chat template failed to render: " + e.getMessage());
        }
    }
}

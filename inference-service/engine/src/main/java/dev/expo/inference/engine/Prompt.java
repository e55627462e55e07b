package dev.expo.inference.engine;

import dev.expo.common.ExpoException;
import dev.expo.modeling.tokenizer.ChatTemplate;

import java.util.List;

/**
 * What a request feeds the model: exactly one of plain text (BOS added as the tokenizer does), a conversation
 * (rendered with the model's chat template), or raw token ids; and optionally an image (PNG/JPEG bytes) for a
 * multimodal model.
 *
 * @param image null = none
 */
public record Prompt(String text, List<ChatTemplate.Message> chat, boolean addGenerationPrompt, long[] tokenIds,
                     byte[] image) {

    public Prompt {
        int given = (text != null ? 1 : 0) + (chat != null ? 1 : 0) + (tokenIds != null ? 1 : 0);
        if (given != 1) {
            throw ExpoException.invalidArgument("prompt", given + " kinds", "give exactly one of text, chat messages "
                    + "or token ids");
        }
        if (chat != null && chat.isEmpty()) {
            throw ExpoException.invalidArgument("chat", "[]", "a conversation needs at least one message");
        }
        if (tokenIds != null && tokenIds.length == 0) {
            throw ExpoException.invalidArgument("token_ids", "[]", "at least one token id is required");
        }
        if (image != null && image.length == 0) {
            image = null;
        }
    }

    public static Prompt ofText(String text) {
        return new Prompt(text, null, true, null, null);
    }

    public static Prompt ofIds(long[] ids) {
        return new Prompt(null, null, true, ids, null);
    }

    public Prompt withImage(byte[] bytes) {
        return new Prompt(text, chat, addGenerationPrompt, tokenIds, bytes);
    }
}

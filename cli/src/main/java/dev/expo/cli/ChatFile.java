package dev.expo.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.expo.api.v1.ChatMessage;
import dev.expo.api.v1.ChatMessages;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * {@code --messages FILE}: a conversation as transformers' apply_chat_template takes it, a JSON array of
 * {@code {"role": ..., "content": ...}} ({@code -} reads standard input), rendered by the model's chat template.
 */
final class ChatFile {

    private static final ObjectMapper JSON = new ObjectMapper();

    private ChatFile() {
    }

    static ChatMessages read(Path file, boolean addGenerationPrompt) {
        String text;
        try {
            text = file.toString().equals("-") ? new String(System.in.readAllBytes(), StandardCharsets.UTF_8)
                    : Files.readString(file);
        } catch (java.nio.file.NoSuchFileException e) {
            throw new CliException("--messages: no such file " + file, 2);
        } catch (IOException e) {
            throw new CliException("--messages: cannot read " + file + " (" + e.getMessage() + ")", 2);
        }
        JsonNode array;
        try {
            array = JSON.readTree(text);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            // Jackson's own message may quote its source-location boilerplate; the line and column say it better.
            String reason = e.getOriginalMessage().replaceAll("\\s*\\(start marker at \\[Source.*", "");
            String where = e.getLocation() == null ? "" : " at line " + e.getLocation().getLineNr() + ", column "
                    + e.getLocation().getColumnNr();
            throw new CliException("--messages: " + file + " is not JSON" + where + " (" + reason + ")", 2);
        }
        if (array == null || !array.isArray() || array.isEmpty()) {
            throw new CliException("--messages: " + file + " must hold a non-empty JSON array of {\"role\": ..., "
                    + "\"content\": ...}", 2);
        }
        ChatMessages.Builder messages = ChatMessages.newBuilder().setAddGenerationPrompt(addGenerationPrompt);
        for (int i = 0; i < array.size(); i++) {
            JsonNode message = array.get(i);
            if (!message.path("role").isTextual() || !message.path("content").isTextual()) {
                throw new CliException("--messages: entry " + i + " of " + file + " needs a string \"role\" and a "
                        + "string \"content\"", 2);
            }
            messages.addMessages(ChatMessage.newBuilder().setRole(message.get("role").asText())
                    .setContent(message.get("content").asText()));
        }
        return messages.build();
    }
}

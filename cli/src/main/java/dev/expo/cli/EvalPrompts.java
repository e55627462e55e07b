package dev.expo.cli;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.google.protobuf.ByteString;
import dev.expo.api.v1.EvaluationPrompt;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A prompt set: AlpacaEval's JSON list of {@code {"instruction", "dataset", ...}} (its eval set, or a
 * model_outputs.json), or JSONL with one such object per line. Optional per prompt: {@code "id"} (default: the
 * position), {@code "image"} (a file, relative to the prompt file, for a multimodal variant).
 */
final class EvalPrompts {

    private EvalPrompts() {
    }

    static List<EvaluationPrompt> read(Path file) {
        String text;
        try {
            text = Files.readString(file);
        } catch (NoSuchFileException e) {
            throw new CliException("--prompts " + file + ": no such file", 2);
        } catch (IOException e) {
            throw new CliException("--prompts " + file + ": " + e.getMessage(), 2);
        }
        List<JsonNode> entries = new ArrayList<>();
        String trimmed = text.strip();
        if (trimmed.startsWith("[")) {
            try {
                Json.MAPPER.readTree(trimmed).forEach(entries::add);
            } catch (JsonProcessingException e) {
                throw new CliException("--prompts " + file + ": not a JSON list: " + e.getOriginalMessage(), 2);
            }
        } else {
            String[] lines = text.split("\n", -1);
            for (int i = 0; i < lines.length; i++) {
                if (lines[i].isBlank()) {
                    continue;
                }
                try {
                    entries.add(Json.MAPPER.readTree(lines[i]));
                } catch (JsonProcessingException e) {
                    throw new CliException("--prompts " + file + ", line " + (i + 1) + ": not JSON: "
                            + e.getOriginalMessage(), 2);
                }
            }
        }
        if (entries.isEmpty()) {
            throw new CliException("--prompts " + file + ": no prompts in it", 2);
        }
        List<EvaluationPrompt> prompts = new ArrayList<>();
        for (int i = 0; i < entries.size(); i++) {
            JsonNode entry = entries.get(i);
            String where = "--prompts " + file + ", prompt " + (i + 1);
            if (!entry.isObject() || !entry.path("instruction").isTextual()) {
                throw new CliException(where + ": needs an \"instruction\" string (AlpacaEval's format)", 2);
            }
            EvaluationPrompt.Builder prompt = EvaluationPrompt.newBuilder()
                    .setId(entry.hasNonNull("id") ? entry.get("id").asText() : String.valueOf(i))
                    .setInstruction(entry.get("instruction").asText());
            if (entry.path("dataset").isTextual()) {
                prompt.setDataset(entry.get("dataset").asText());
            }
            if (entry.path("image").isTextual()) {
                Path image = file.toAbsolutePath().getParent().resolve(entry.get("image").asText());
                try {
                    prompt.setImage(ByteString.copyFrom(Files.readAllBytes(image)));
                } catch (IOException e) {
                    throw new CliException(where + ": cannot read its image " + image, 2);
                }
            }
            prompts.add(prompt.build());
        }
        return prompts;
    }
}

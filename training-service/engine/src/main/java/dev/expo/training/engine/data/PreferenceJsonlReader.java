package dev.expo.training.engine.data;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.expo.common.ExpoException;

import java.io.BufferedReader;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/**
 * The seed's processed JSONL: one object a line with {@code prompt}, {@code chosen_response},
 * {@code rejected_response}, {@code image_path} (relative to the file's folder, or absolute) and optional
 * {@code chosen_mask} / {@code rejected_mask} (0/1 per response token, the final eos included, or without it).
 */
public final class PreferenceJsonlReader {

    private static final ObjectMapper JSON = new ObjectMapper();

    private PreferenceJsonlReader() {
    }

    public static void read(Path file, Consumer<RawPreference> sink) {
        Path folder = file.toAbsolutePath().getParent();
        try (BufferedReader reader = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
            long row = 0;
            for (String line = reader.readLine(); line != null; line = reader.readLine()) {
                if (line.isBlank()) {
                    continue;
                }
                List<String> problems = new ArrayList<>();
                JsonNode json;
                try {
                    json = JSON.readTree(line);
                } catch (IOException e) {
                    json = null;
                }
                if (json == null || !json.isObject()) {
                    problems.add("line is not a JSON object");
                    sink.accept(new RawPreference(row++, null, null, null, null, null, null, problems));
                    continue;
                }
                String question = RlhfvParquetReader.string(json, "prompt");
                String chosen = RlhfvParquetReader.string(json, "chosen_response");
                String rejected = RlhfvParquetReader.string(json, "rejected_response");
                List<String> missing = new ArrayList<>();
                for (String[] field : new String[][] {{"prompt", question}, {"chosen_response", chosen},
                    {"rejected_response", rejected}}) {
                    if (field[1] == null) {
                        missing.add(field[0]);
                    }
                }
                if (!missing.isEmpty()) {
                    problems.add("lacks string key(s): " + String.join(", ", missing));
                }
                byte[] image = null;
                String imagePath = RlhfvParquetReader.string(json, "image_path");
                if (imagePath == null) {
                    problems.add("no image_path");
                } else {
                    try {
                        image = Files.readAllBytes(folder.resolve(imagePath));
                    } catch (NoSuchFileException e) {
                        problems.add("image " + imagePath + " does not exist");
                    } catch (IOException e) {
                        problems.add("image " + imagePath + " cannot be read: " + e.getMessage());
                    }
                }
                int[] chosenMask = mask(json.get("chosen_mask"), "chosen_mask", problems);
                int[] rejectedMask = mask(json.get("rejected_mask"), "rejected_mask", problems);
                sink.accept(new RawPreference(row++, question, chosen, rejected, image, chosenMask, rejectedMask,
                        problems));
            }
        } catch (NoSuchFileException e) {
            throw ExpoException.notFound("dataset source " + file + " does not exist");
        } catch (IOException e) {
            throw ExpoException.invalidArgument(file + " cannot be read as UTF-8 JSONL: " + e.getMessage());
        }
    }

    private static int[] mask(JsonNode node, String field, List<String> problems) {
        if (node == null || node.isNull()) {
            return null;
        }
        if (!node.isArray()) {
            problems.add(field + " is not a list of 0/1");
            return null;
        }
        int[] mask = new int[node.size()];
        for (int i = 0; i < mask.length; i++) {
            JsonNode v = node.get(i);
            if (!(v.isIntegralNumber() || v.isBoolean()) || (v.isIntegralNumber() && v.asInt() != 0 && v.asInt() != 1)) {
                problems.add(field + " is not a list of 0/1");
                return null;
            }
            mask[i] = v.isBoolean() ? (v.asBoolean() ? 1 : 0) : v.asInt();
        }
        return mask;
    }
}

package dev.expo.training.engine.data;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.expo.common.ExpoException;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A processed dataset folder ({@code <store>/datasets/<name>/}): {@code dataset_info.json} (source sha256, tokenizer,
 * counts, rejected rows), {@code rows.jsonl} (tokenized pairs with their corrected positions) and
 * {@code images/<sha256>} (each distinct image once).
 */
public record PreferenceDataset(String name, Path dir, JsonNode info, List<PreferencePair> pairs) {

    public static final String INFO = "dataset_info.json";
    public static final String ROWS = "rows.jsonl";
    public static final String IMAGES = "images";
    private static final ObjectMapper JSON = new ObjectMapper();

    public static PreferenceDataset load(String name, Path dir) {
        if (!Files.isRegularFile(dir.resolve(INFO))) {
            throw ExpoException.notFound("dataset \"" + name + "\" does not exist (no " + dir.resolve(INFO) + "); "
                    + "make it with PreprocessDataset / bin/expo datasets preprocess");
        }
        try (BufferedReader reader = Files.newBufferedReader(dir.resolve(ROWS))) {
            JsonNode info = JSON.readTree(dir.resolve(INFO).toFile());
            List<PreferencePair> pairs = new ArrayList<>();
            for (String line = reader.readLine(); line != null; line = reader.readLine()) {
                JsonNode row = JSON.readTree(line);
                pairs.add(new PreferencePair(row.get("row").asLong(), row.get("image").asText(),
                        row.get("prompt_length").asInt(), longs(row.get("chosen_ids")), longs(row.get("rejected_ids")),
                        ints(row.get("chosen_corrected")), ints(row.get("rejected_corrected"))));
            }
            return new PreferenceDataset(name, dir, info, List.copyOf(pairs));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read dataset " + dir, e);
        }
    }

    public Path imagePath(String sha256) {
        return dir.resolve(IMAGES).resolve(sha256);
    }

    /** The tokenizer the rows were made with: the model's name and the sha256 of its tokenizer.json. */
    public String tokenizerSha256() {
        return info.path("tokenizer").path("sha256").asText();
    }

    public String fingerprint() {
        return info.path("fingerprint").asText();
    }

    private static long[] longs(JsonNode array) {
        long[] out = new long[array.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = array.get(i).asLong();
        }
        return out;
    }

    private static int[] ints(JsonNode array) {
        int[] out = new int[array.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = array.get(i).asInt();
        }
        return out;
    }
}

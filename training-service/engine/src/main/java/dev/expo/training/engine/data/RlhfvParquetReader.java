package dev.expo.training.engine.data;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.expo.common.ExpoException;
import dev.hardwood.InputFile;
import dev.hardwood.reader.ParquetFileReader;
import dev.hardwood.reader.RowReader;
import dev.hardwood.row.PqStruct;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/**
 * The hub's {@code openbmb/RLHF-V-Dataset} parquet, read with Hardwood: {@code text} is a JSON string
 * {@code {"question", "chosen", "rejected"}} (Muffin's RLHFVDataset {@code json.loads} it) and {@code image} is the
 * {@code datasets} Image struct {@code {bytes, path}}.
 */
public final class RlhfvParquetReader {

    private static final ObjectMapper JSON = new ObjectMapper();

    private RlhfvParquetReader() {
    }

    public static void read(Path file, Consumer<RawPreference> sink) {
        try (ParquetFileReader reader = ParquetFileReader.open(InputFile.of(file));
             RowReader rows = reader.rowReader()) {
            long row = 0;
            while (rows.hasNext()) {
                rows.next();
                List<String> problems = new ArrayList<>();
                byte[] image = null;
                if (rows.isNull("image")) {
                    problems.add("no image");
                } else {
                    PqStruct struct = rows.getStruct("image");
                    image = struct.isNull("bytes") ? null : struct.getBinary("bytes");
                    if (image == null) {
                        problems.add("no image bytes (the image struct's bytes are null)");
                    }
                }
                String question = null;
                String chosen = null;
                String rejected = null;
                String text = rows.isNull("text") ? null : rows.getString("text");
                if (text == null) {
                    problems.add("text is null");
                } else {
                    JsonNode json = parse(text);
                    if (json == null || !json.isObject()) {
                        problems.add("text is not a JSON object");
                    } else {
                        question = string(json, "question");
                        chosen = string(json, "chosen");
                        rejected = string(json, "rejected");
                        List<String> missing = new ArrayList<>();
                        if (question == null) {
                            missing.add("question");
                        }
                        if (chosen == null) {
                            missing.add("chosen");
                        }
                        if (rejected == null) {
                            missing.add("rejected");
                        }
                        if (!missing.isEmpty()) {
                            problems.add("text JSON lacks string key(s): " + String.join(", ", missing));
                        }
                    }
                }
                sink.accept(new RawPreference(row++, question, chosen, rejected, image, null, null, problems));
            }
        } catch (IOException e) {
            throw ExpoException.invalidArgument(file + " is not a readable parquet file: " + e.getMessage());
        } catch (IllegalArgumentException | IllegalStateException e) {
            throw ExpoException.invalidArgument(file + " does not have the RLHF-V columns (text, image{bytes, path}): "
                    + e.getMessage());
        }
    }

    private static JsonNode parse(String text) {
        try {
            return JSON.readTree(text);
        } catch (IOException e) {
            return null;
        }
    }

    static String string(JsonNode json, String key) {
        JsonNode value = json.get(key);
        return value != null && value.isTextual() ? value.asText() : null;
    }
}

package dev.expo.training.engine.data;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.expo.common.ExpoException;
import dev.expo.common.store.ModelStore;
import dev.expo.modeling.clip.ImageDecoder;
import dev.expo.modeling.tokenizer.TextTokenizer;

import java.io.BufferedWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;

/**
 * Turns a raw preference file into a dataset folder: each row checked as Muffin's loader would use it (an image that
 * decodes; question, chosen and rejected non-empty after strip), tokenized as Muffin's collator does
 * ({@code [bos] + encode(prompt) + encode(response) + [eos]}, no special tokens inside), its corrected tokens taken
 * from the file's explicit masks or else from {@link CorrectedTokens#diff}, rows longer than the limits rejected,
 * then a seeded fraction of the valid rows kept (the seed keeps 20%).
 */
public final class DatasetPreprocessor {

    public enum Format { RLHFV_PARQUET, JSONL }

    public record Request(Path source, Format format, String tokenizerModel, Path tokenizerDir, String output,
                          double fraction, long seed, int maxPromptTokens, int maxResponseTokens, boolean overwrite) {
        public Request {
            if (!(fraction >= 0 && fraction <= 1)) {
                throw ExpoException.invalidArgument("fraction", fraction, "must be in [0, 1] (0 = keep all)");
            }
            if (maxPromptTokens < 1 || maxResponseTokens < 1) {
                throw ExpoException.invalidArgument("max_prompt_tokens / max_response_tokens",
                        maxPromptTokens + " / " + maxResponseTokens, "must be positive");
            }
        }
    }

    public record Rejected(long row, String reason) {
    }

    public record Result(String dataset, long rowsRead, long rowsValid, long rowsKept, List<Rejected> rejected) {
    }

    /** Pixel limit for the validity check only (the training pipeline resizes to the tower's input). */
    private static final long MAX_PIXELS = 64L * 1024 * 1024;
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
    private static final ObjectMapper LINE = new ObjectMapper();

    private final DatasetStore datasets;

    public DatasetPreprocessor(DatasetStore datasets) {
        this.datasets = datasets;
    }

    public static Format guessFormat(Path source) {
        String name = source.getFileName().toString().toLowerCase();
        if (name.endsWith(".parquet")) {
            return Format.RLHFV_PARQUET;
        }
        if (name.endsWith(".jsonl")) {
            return Format.JSONL;
        }
        throw ExpoException.invalidArgument("format", name, "cannot tell the format from the file name; give "
                + "rlhfv-parquet or jsonl");
    }

    public Result run(Request request) {
        ModelStore.checkName("output_dataset", request.output());
        if (!request.overwrite() && Files.exists(datasets.dir(request.output()))) {
            throw new ExpoException(ExpoException.Kind.ALREADY_EXISTS, "dataset \"" + request.output()
                    + "\" already exists; choose another name");
        }
        Format format = request.format() == null ? guessFormat(request.source()) : request.format();
        List<RawPreference> raw = new ArrayList<>();
        if (format == Format.RLHFV_PARQUET) {
            RlhfvParquetReader.read(request.source(), raw::add);
        } else {
            PreferenceJsonlReader.read(request.source(), raw::add);
        }
        Path staging = datasets.newStaging(request.output());
        try (TextTokenizer tokenizer = TextTokenizer.load(request.tokenizerDir())) {
            if (tokenizer.bosTokenId() < 0 || tokenizer.eosTokenId() < 0) {
                throw ExpoException.failedPrecondition("the tokenizer of " + request.tokenizerModel() + " has no "
                        + "bos/eos token; Muffin's sequences are [bos] + prompt + response + [eos]");
            }
            List<Rejected> rejected = new ArrayList<>();
            List<Candidate> valid = new ArrayList<>();
            for (RawPreference row : raw) {
                Candidate candidate = check(row, tokenizer, request, rejected);
                if (candidate != null) {
                    valid.add(candidate);
                }
            }
            if (valid.isEmpty()) {
                throw ExpoException.failedPrecondition(request.source() + " has no usable row (" + raw.size()
                        + " read" + (rejected.isEmpty() ? "" : "; the first is rejected because "
                        + rejected.get(0).reason()) + "); nothing was written");
            }
            List<Candidate> kept = sample(valid, request.fraction(), request.seed());
            Files.createDirectories(staging.resolve(PreferenceDataset.IMAGES));
            MessageDigest fingerprint = sha256();
            try (BufferedWriter out = Files.newBufferedWriter(staging.resolve(PreferenceDataset.ROWS))) {
                for (Candidate c : kept) {
                    Path image = staging.resolve(PreferenceDataset.IMAGES).resolve(c.pair().image());
                    if (!Files.exists(image)) {
                        Files.write(image, c.imageBytes());
                    }
                    String line = LINE.writeValueAsString(rowJson(c.pair()));
                    fingerprint.update(line.getBytes(StandardCharsets.UTF_8));
                    out.write(line);
                    out.write('\n');
                }
            }
            ObjectNode info = JSON.createObjectNode();
            info.put("format", format == Format.JSONL ? "jsonl" : "rlhfv-parquet");
            info.put("source", request.source().toString());
            info.put("source_sha256", hex(sha256().digest(Files.readAllBytes(request.source()))));
            ObjectNode tok = info.putObject("tokenizer");
            tok.put("model", request.tokenizerModel());
            tok.put("sha256", tokenizerSha256(request.tokenizerDir()));
            tok.put("bos_token_id", tokenizer.bosTokenId());
            tok.put("eos_token_id", tokenizer.eosTokenId());
            info.put("rows_read", raw.size());
            info.put("rows_valid", valid.size());
            info.put("rows_kept", kept.size());
            info.put("fraction", request.fraction());
            info.put("seed", request.seed());
            info.put("max_prompt_tokens", request.maxPromptTokens());
            info.put("max_response_tokens", request.maxResponseTokens());
            info.put("corrected_tokens", "get_diff_ids(rejected[1:], chosen[1:], min_match_size="
                    + CorrectedTokens.MUFFIN_MIN_MATCH_SIZE + ") per row (difflib with autojunk), unless the source "
                    + "gives chosen_mask / rejected_mask");
            info.put("fingerprint", hex(fingerprint.digest()));
            info.put("created", Instant.now().toString());
            ArrayNode rejectedJson = info.putArray("rejected");
            for (Rejected r : rejected) {
                rejectedJson.addObject().put("row", r.row()).put("reason", r.reason());
            }
            Files.writeString(staging.resolve(PreferenceDataset.INFO), JSON.writeValueAsString(info) + "\n");
            datasets.publish(staging, request.output(), request.overwrite());
            return new Result(request.output(), raw.size(), valid.size(), kept.size(), List.copyOf(rejected));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write dataset " + request.output(), e);
        } finally {
            ModelStore.deleteTree(staging);
        }
    }

    private record Candidate(PreferencePair pair, byte[] imageBytes) {
    }

    private static Candidate check(RawPreference row, TextTokenizer tokenizer, Request request,
                                   List<Rejected> rejected) {
        List<String> problems = new ArrayList<>(row.problems());
        if (row.image() != null) {
            try {
                ImageDecoder.decode(row.image(), MAX_PIXELS);
            } catch (ExpoException e) {
                problems.add("image does not decode: " + e.getMessage());
            }
        }
        for (String[] field : new String[][] {{"question", row.question()}, {"chosen", row.chosen()},
            {"rejected", row.rejected()}}) {
            if (field[1] != null && field[1].strip().isEmpty()) {
                problems.add(field[0] + " is empty");
            }
        }
        if (!problems.isEmpty()) {
            rejected.add(new Rejected(row.row(), String.join("; ", problems)));
            return null;
        }
        long[] prompt = tokenizer.encode(row.question(), false);
        long[] chosen = tokenizer.encode(row.chosen(), false);
        long[] rejectedIds = tokenizer.encode(row.rejected(), false);
        if (prompt.length > request.maxPromptTokens()) {
            rejected.add(new Rejected(row.row(), "too long: the prompt has " + prompt.length + " tokens (max_prompt_tokens "
                    + request.maxPromptTokens() + ")"));
            return null;
        }
        if (Math.max(chosen.length, rejectedIds.length) + 1 > request.maxResponseTokens()) {
            rejected.add(new Rejected(row.row(), "too long: the responses have " + chosen.length + " / "
                    + rejectedIds.length + " tokens + eos (max_response_tokens " + request.maxResponseTokens() + ")"));
            return null;
        }
        long[] chosenFull = sequence(tokenizer, prompt, chosen);
        long[] rejectedFull = sequence(tokenizer, prompt, rejectedIds);
        int[] chosenCorrected;
        int[] rejectedCorrected;
        if (row.chosenMask() != null || row.rejectedMask() != null) {
            try {
                chosenCorrected = explicit(row.chosenMask(), prompt.length, chosen.length, "chosen_mask");
                rejectedCorrected = explicit(row.rejectedMask(), prompt.length, rejectedIds.length, "rejected_mask");
            } catch (IllegalArgumentException e) {
                rejected.add(new Rejected(row.row(), e.getMessage()));
                return null;
            }
        } else {
            CorrectedTokens diff = CorrectedTokens.diff(Arrays.copyOfRange(rejectedFull, 1, rejectedFull.length),
                    Arrays.copyOfRange(chosenFull, 1, chosenFull.length), CorrectedTokens.MUFFIN_MIN_MATCH_SIZE);
            chosenCorrected = diff.chosen();
            rejectedCorrected = diff.rejected();
        }
        String image = hex(sha256().digest(row.image()));
        return new Candidate(new PreferencePair(row.row(), image, prompt.length, chosenFull, rejectedFull,
                chosenCorrected, rejectedCorrected), row.image());
    }

    private static long[] sequence(TextTokenizer tokenizer, long[] prompt, long[] response) {
        long[] full = new long[prompt.length + response.length + 2];
        full[0] = tokenizer.bosTokenId();
        System.arraycopy(prompt, 0, full, 1, prompt.length);
        System.arraycopy(response, 0, full, 1 + prompt.length, response.length);
        full[full.length - 1] = tokenizer.eosTokenId();
        return full;
    }

    /** An explicit 0/1 mask over the response tokens (+ eos, which may be left out) as logp-axis positions. */
    private static int[] explicit(int[] mask, int promptLength, int responseLength, String field) {
        if (mask == null) {
            return new int[0];
        }
        if (mask.length != responseLength && mask.length != responseLength + 1) {
            throw new IllegalArgumentException(field + " has " + mask.length + " entries but the response has "
                    + responseLength + " tokens (+1 for eos)");
        }
        List<Integer> positions = new ArrayList<>();
        for (int k = 0; k < mask.length; k++) {
            if (mask[k] == 1) {
                positions.add(promptLength + k);
            }
        }
        return positions.stream().mapToInt(Integer::intValue).toArray();
    }

    /** A seeded sample of round(fraction * n) rows (at least one), kept in file order; 0 or 1 keeps all. */
    private static List<Candidate> sample(List<Candidate> valid, double fraction, long seed) {
        if (fraction == 0 || fraction == 1 || valid.isEmpty()) {
            return valid;
        }
        int keep = (int) Math.max(1, Math.round(fraction * valid.size()));
        Integer[] order = new Integer[valid.size()];
        for (int i = 0; i < order.length; i++) {
            order[i] = i;
        }
        java.util.Collections.shuffle(Arrays.asList(order), new Random(seed));
        Integer[] chosen = Arrays.copyOf(order, keep);
        Arrays.sort(chosen);
        List<Candidate> kept = new ArrayList<>();
        for (int i : chosen) {
            kept.add(valid.get(i));
        }
        return kept;
    }

    private static ObjectNode rowJson(PreferencePair pair) {
        ObjectNode row = LINE.createObjectNode();
        row.put("row", pair.row());
        row.put("image", pair.image());
        row.put("prompt_length", pair.promptLength());
        ArrayNode c = row.putArray("chosen_ids");
        Arrays.stream(pair.chosenIds()).forEach(c::add);
        ArrayNode r = row.putArray("rejected_ids");
        Arrays.stream(pair.rejectedIds()).forEach(r::add);
        ArrayNode cc = row.putArray("chosen_corrected");
        Arrays.stream(pair.chosenCorrected()).forEach(cc::add);
        ArrayNode rc = row.putArray("rejected_corrected");
        Arrays.stream(pair.rejectedCorrected()).forEach(rc::add);
        return row;
    }

    public static String tokenizerSha256(Path modelDir) {
        try {
            return hex(sha256().digest(Files.readAllBytes(modelDir.resolve("tokenizer.json"))));
        } catch (IOException e) {
            throw ExpoException.failedPrecondition(modelDir + " has no readable tokenizer.json");
        }
    }

    public static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    public static String hex(byte[] bytes) {
        return HexFormat.of().formatHex(bytes);
    }
}

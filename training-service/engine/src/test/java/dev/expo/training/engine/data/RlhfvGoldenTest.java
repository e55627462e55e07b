package dev.expo.training.engine.data;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.expo.common.store.ModelStore;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The rlhfv fixture row by row: the hub parquet and the seed's JSONL both give the golden token ids, Muffin's corrected
 * positions (the long row exercises difflib's autojunk) and the golden validity; fractions are seeded.
 */
class RlhfvGoldenTest {

    static final Path FIXTURES = Path.of(System.getProperty("expo.testdata", "../../testdata/fixtures"));
    static final Path TOKENIZER = FIXTURES.resolve("tokenizer");
    static JsonNode golden;

    @BeforeAll
    static void readGolden() throws Exception {
        golden = new ObjectMapper().readTree(FIXTURES.resolve("rlhfv/golden/rlhfv_golden.json").toFile());
    }

    @Test
    void diffOfEveryParsedRowIsMuffins() {
        int checked = 0;
        for (JsonNode row : golden.get("rows")) {
            if (!row.has("chosen_full_ids")) {
                continue;
            }
            long[] chosen = tail(longs(row.get("chosen_full_ids")));
            long[] rejected = tail(longs(row.get("rejected_full_ids")));
            CorrectedTokens diff = CorrectedTokens.diff(rejected, chosen, 3);
            assertThat(diff.chosen()).as("row %s chosen", row.get("row")).containsExactly(ints(row.get("chosen_mod_positions")));
            assertThat(diff.rejected()).as("row %s rejected", row.get("row")).containsExactly(ints(row.get("rejected_mod_positions")));
            checked++;
        }
        assertThat(checked).isGreaterThanOrEqualTo(20);
    }

    @Test
    void autojunkOffDiffersOnTheLongRowAndMatchesDifflibWithoutIt() {
        JsonNode row = golden.get("rows").get(17);
        long[] chosen = tail(longs(row.get("chosen_full_ids")));
        assertThat(chosen.length).isGreaterThanOrEqualTo(200);
        long[] rejected = tail(longs(row.get("rejected_full_ids")));
        List<SequenceMatcher.Match> blocks = new SequenceMatcher(rejected, chosen, false).matchingBlocks();
        List<Integer> chosenOff = new ArrayList<>();
        int lastA = 0;
        int lastB = 0;
        for (SequenceMatcher.Match m : blocks) {
            if (m.size() < 3 && m.size() != 0) {
                continue;
            }
            if (m.a() > lastA && m.b() > lastB) {
                for (int j = lastB; j < m.b(); j++) {
                    chosenOff.add(j);
                }
            }
            lastA = m.a() + m.size();
            lastB = m.b() + m.size();
        }
        assertThat(chosenOff.stream().mapToInt(Integer::intValue).toArray())
                .containsExactly(ints(row.get("chosen_mod_positions_autojunk_off")));
        assertThat(ints(row.get("chosen_mod_positions_autojunk_off")))
                .isNotEqualTo(ints(row.get("chosen_mod_positions")));
    }

    @Test
    void parquetAndJsonlGiveTheGoldenRows(@TempDir Path store) throws Exception {
        DatasetStore datasets = new DatasetStore(new ModelStore(store));
        DatasetPreprocessor preprocessor = new DatasetPreprocessor(datasets);
        for (String[] source : new String[][] {{"rlhfv/rlhfv_synth.parquet", "parquet"}, {"rlhfv/processed.jsonl",
            "jsonl"}}) {
            DatasetPreprocessor.Result result = preprocessor.run(new DatasetPreprocessor.Request(
                    FIXTURES.resolve(source[0]), null, "tokenizer", TOKENIZER, source[1], 0, 0, 4096, 4096, false));
            assertThat(result.rowsRead()).isEqualTo(24);
            Map<Long, String> reasons = new HashMap<>();
            result.rejected().forEach(r -> reasons.put(r.row(), r.reason()));
            PreferenceDataset dataset = datasets.load(source[1]);
            Map<Long, PreferencePair> pairs = new HashMap<>();
            dataset.pairs().forEach(p -> pairs.put(p.row(), p));
            for (JsonNode row : golden.get("rows")) {
                long index = row.get("row").asLong();
                if (!row.get("valid").asBoolean()) {
                    assertThat(reasons).as("%s row %s", source[1], index).containsKey(index);
                    continue;
                }
                PreferencePair pair = pairs.get(index);
                assertThat(pair).as("%s row %s (%s)", source[1], index, reasons.get(index)).isNotNull();
                assertThat(pair.chosenIds()).containsExactly(longs(row.get("chosen_full_ids")));
                assertThat(pair.rejectedIds()).containsExactly(longs(row.get("rejected_full_ids")));
                assertThat(pair.promptLength()).isEqualTo(row.get("prompt_ids").size());
                assertThat(pair.chosenCorrected()).containsExactly(ints(row.get("chosen_mod_positions")));
                assertThat(pair.rejectedCorrected()).containsExactly(ints(row.get("rejected_mod_positions")));
                assertThat(Files.exists(dataset.imagePath(pair.image()))).isTrue();
            }
            // The JSONL keeps nulls where the parquet's text did not parse.
            assertThat(reasons.get(20L)).contains(source[1].equals("parquet") ? "not a JSON" : "lacks string key");
            assertThat(reasons.get(19L)).contains("rejected");
            assertThat(reasons.get(15L)).contains("image");
            assertThat(reasons.get(7L)).contains("rejected is empty");
            assertThat(dataset.info().get("source_sha256").asText()).hasSize(64);
            assertThat(dataset.info().get("rows_kept").asInt()).isEqualTo(pairs.size());
        }
    }

    @Test
    void aSeededFractionAndLengthLimits(@TempDir Path store) {
        DatasetStore datasets = new DatasetStore(new ModelStore(store));
        DatasetPreprocessor preprocessor = new DatasetPreprocessor(datasets);
        Path source = FIXTURES.resolve("rlhfv/rlhfv_synth.parquet");
        var a = preprocessor.run(new DatasetPreprocessor.Request(source, null, "t", TOKENIZER, "a", 0.2, 7, 4096, 4096,
                false));
        var b = preprocessor.run(new DatasetPreprocessor.Request(source, null, "t", TOKENIZER, "b", 0.2, 7, 4096, 4096,
                false));
        assertThat(a.rowsKept()).isEqualTo(Math.round(0.2 * a.rowsValid()));
        assertThat(datasets.load("a").pairs()).extracting(PreferencePair::row)
                .isEqualTo(datasets.load("b").pairs().stream().map(PreferencePair::row).toList());
        var shortRows = preprocessor.run(new DatasetPreprocessor.Request(source, null, "t", TOKENIZER, "c", 0, 0, 4096,
                100, false));
        assertThat(shortRows.rejected()).anySatisfy(r -> {
            assertThat(r.row()).isEqualTo(17);
            assertThat(r.reason()).contains("too long");
        });
    }

    static long[] longs(JsonNode array) {
        long[] out = new long[array.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = array.get(i).asLong();
        }
        return out;
    }

    static int[] ints(JsonNode array) {
        int[] out = new int[array.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = array.get(i).asInt();
        }
        return out;
    }

    private static long[] tail(long[] full) {
        return java.util.Arrays.copyOfRange(full, 1, full.length);
    }
}

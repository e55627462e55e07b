package dev.expo.cli;

import dev.expo.api.v1.DatasetFormat;
import dev.expo.api.v1.PreprocessDatasetRequest;
import dev.expo.api.v1.PreprocessDatasetResponse;
import dev.expo.api.v1.RejectedRow;
import dev.expo.api.v1.TrainingServiceGrpc;
import io.grpc.ManagedChannel;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;

/** Preference datasets for training, made by the training service in its store. */
@Command(name = "datasets", description = "Preference datasets for DDPO training.",
        subcommands = DatasetsCommand.Preprocess.class)
public class DatasetsCommand {

    @Command(name = "preprocess", description = "Tokenize an RLHF-V parquet or the seed's JSONL into a dataset: "
            + "corrected tokens as Muffin's get_diff_ids, images by content hash, every rejected row with its reason.")
    static class Preprocess implements Callable<Integer> {

        @Option(names = "--source", required = true, paramLabel = "FILE",
                description = {"The raw file: a file here is sent as an absolute path (the service must see the same "
                        + "files); a relative path that is not a file here is looked up in the store's datasets/ "
                        + "folder by the service."})
        Path source;

        @Option(names = "--format", paramLabel = "rlhfv-parquet|jsonl",
                description = "Default: from the file name (.parquet / .jsonl).")
        String format;

        @Option(names = "--tokenizer-model", required = true, paramLabel = "NAME",
                description = "The model of the store whose tokenizer is used (the language model you will train).")
        String tokenizerModel;

        @Option(names = "--output", required = true, paramLabel = "NAME", description = "The dataset's name.")
        String output;

        @Option(names = "--fraction", defaultValue = "0", paramLabel = "F",
                description = "Keep this fraction of the valid rows (the seed keeps 0.2); 0 = all.")
        double fraction;

        @Option(names = "--seed", defaultValue = "0", description = "Seed of the fraction's sample.")
        long seed;

        @Option(names = "--max-prompt-tokens", defaultValue = "256", paramLabel = "N")
        int maxPromptTokens;

        @Option(names = "--max-response-tokens", defaultValue = "256", paramLabel = "N")
        int maxResponseTokens;

        @Option(names = "--overwrite", description = "Replace a dataset of that name.")
        boolean overwrite;

        @Option(names = "--json", description = "Print one JSON object.")
        boolean json;

        private String sourcePath() {
            return source.isAbsolute() || !java.nio.file.Files.exists(source) ? source.toString()
                    : source.toAbsolutePath().normalize().toString();
        }

        @Override
        public Integer call() {
            PreprocessDatasetRequest.Builder request = PreprocessDatasetRequest.newBuilder()
                    .setSource(sourcePath())
                    .setFormat(format(format))
                    .setTokenizerModel(tokenizerModel)
                    .setOutputDataset(output)
                    .setFraction(fraction)
                    .setSeed(seed)
                    .setMaxPromptTokens(maxPromptTokens)
                    .setMaxResponseTokens(maxResponseTokens)
                    .setOverwrite(overwrite);
            ManagedChannel channel = GatewayOptions.open();
            PreprocessDatasetResponse response;
            try {
                response = TrainingServiceGrpc.newBlockingStub(channel).withDeadlineAfter(1, TimeUnit.HOURS)
                        .preprocessDataset(request.build());
            } finally {
                GatewayOptions.close(channel);
            }
            if (json) {
                Map<String, Object> out = new LinkedHashMap<>();
                out.put("dataset", response.getDataset());
                out.put("rows_read", response.getRowsRead());
                out.put("rows_valid", response.getRowsValid());
                out.put("rows_kept", response.getRowsKept());
                out.put("source_sha256", response.getSourceSha256());
                List<Map<String, Object>> rejected = new ArrayList<>();
                for (RejectedRow row : response.getRejectedList()) {
                    rejected.add(Map.of("row", row.getRow(), "reason", row.getReason()));
                }
                out.put("rejected", rejected);
                System.out.println(Json.of(out));
                return 0;
            }
            System.out.printf("dataset %s: %d rows read, %d valid, %d kept%n", response.getDataset(),
                    response.getRowsRead(), response.getRowsValid(), response.getRowsKept());
            for (RejectedRow row : response.getRejectedList()) {
                System.out.printf("  rejected row %d: %s%n", row.getRow(), row.getReason());
            }
            return 0;
        }

        private static DatasetFormat format(String format) {
            if (format == null) {
                return DatasetFormat.DATASET_FORMAT_UNSPECIFIED;
            }
            return switch (format) {
                case "rlhfv-parquet", "parquet" -> DatasetFormat.DATASET_FORMAT_RLHFV_PARQUET;
                case "jsonl" -> DatasetFormat.DATASET_FORMAT_JSONL;
                default -> throw new CliException("--format is rlhfv-parquet or jsonl, not \"" + format + "\"", 2);
            };
        }
    }
}

package dev.expo.cli;

import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

/** The options that pick a model (and an adapter), shared by score, generate and embed-image. */
public class ModelOptions {

    @Option(names = "--model", required = true, paramLabel = "NAME",
            description = "A language model, multimodal model or vision tower of the store.")
    String model;

    @Option(names = "--adapter", paramLabel = "NAME", description = "A LoRA adapter (PEFT) of the store, unmerged.")
    String adapter;

    @Option(names = "--adapter-scale", paramLabel = "S",
            description = "Multiplies the adapter's delta (default 1; 1 + alpha extrapolates a LoRA-trained model).")
    Double adapterScale;

    static byte[] readImage(Path image) {
        if (image == null) {
            return new byte[0];
        }
        try {
            byte[] bytes = Files.readAllBytes(image);
            if (bytes.length == 0) {
                // On the wire empty bytes mean "no image": the request would silently run on the text alone.
                throw new CliException("image file " + image + " is empty", 2);
            }
            return bytes;
        } catch (NoSuchFileException e) {
            throw new CliException("image file " + image + " does not exist", 2);
        } catch (IOException e) {
            throw new CliException("cannot read image file " + image + ": " + e.getMessage(), 2);
        }
    }

    static List<Integer> ids(String csv, String option) {
        try {
            return Arrays.stream(csv.split(",")).map(String::trim).filter(s -> !s.isEmpty()).map(Integer::parseInt)
                    .toList();
        } catch (NumberFormatException e) {
            throw new CliException(option + " must be comma-separated token ids, e.g. 1,2,3", 2);
        }
    }
}

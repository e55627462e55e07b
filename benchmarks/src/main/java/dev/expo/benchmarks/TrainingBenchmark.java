package dev.expo.benchmarks;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.expo.modeling.ModelOptions;
import dev.expo.modeling.clip.ClipVisionModel;
import dev.expo.modeling.clip.RandomClipVision;
import dev.expo.modeling.llama.LlamaModel;
import dev.expo.modeling.lora.LoraAdapter;
import dev.expo.training.engine.data.DatasetPreprocessor;
import dev.expo.training.engine.data.PreferenceDataset;
import dev.expo.training.engine.data.PreferencePair;
import dev.expo.training.engine.ddpo.DdpoLoss;
import dev.expo.training.engine.ddpo.DdpoTrainer;
import dev.expo.training.engine.ddpo.TrainableParameters;
import dev.expo.training.engine.optim.AdamW;
import dev.expo.training.engine.optim.LearningRateSchedule;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.SplittableRandom;

/**
 * The training benchmark of docs/benchmarks.md: optimizer steps of multimodal DDPO exactly as the training service
 * runs them (DdpoTrainer), one micro batch of 2 pairs, on CPU. A CLIP vision tower 224/16 (hidden 384, 6 layers,
 * random weights), a new projector and the 134M-parameter benchmark LLaMA with LoRA r 8 on q_proj and v_proj; 196
 * image tokens + 128 text tokens per row. The time of each phase (CLIP, reference forward, policy forward, backward,
 * optimizer) and the process's peak RSS.
 *
 * <p>The service computes CLIP features once per image and the reference log-probs once per dataset; the peers
 * compute both on every step. So the figures are: the first pass over the pairs (CLIP and reference included) and
 * then steady steps (both cached).
 */
public final class TrainingBenchmark {

    private TrainingBenchmark() {
    }

    @Command(name = "bin/expo-bench training", description = "Multimodal DDPO steps on CPU, split by phase, with "
            + "peak RSS (docs/benchmarks.md).")
    static final class Options {
        @Option(names = "--work", description = "where the synthetic models are written (default: bench-work)")
        Path work = Path.of("bench-work");
        @Option(names = "--steps", description = "steady steps measured after the first (default: 3)")
        int steps = 3;
        @Option(names = "--text", description = "text tokens per row (default: 128)")
        int textTokens = 128;
        @Option(names = "--pairs", description = "pairs per step, one micro batch (default: 2)")
        int pairs = 2;
        @Option(names = {"-h", "--help"}, usageHelp = true, description = "this help")
        boolean help;
    }

    private static final int VOCAB = 32000;

    public static void main(String[] args) throws Exception {
        Options options = BenchOptions.parse(new Options(), args);
        Path llama = options.work.resolve("llama-134m");
        if (!Files.exists(llama.resolve("config.json"))) {
            System.out.println("Writing the synthetic 134M-parameter LLaMA to " + llama + " ...");
            SyntheticLlama.writeModel(new SyntheticLlama.Shape(VOCAB, 768, 2048, 12, 12), 2_000_000_000L, llama);
        }
        Path clip = options.work.resolve("clip-224-16-h384");
        if (!Files.exists(clip.resolve("config.json"))) {
            RandomClipVision.write(clip, new RandomClipVision.Shape(384, 1536, 6, 6, 224, 16), 7L);
        }
        PreferenceDataset dataset = writeDataset(options.work.resolve("ddpo-bench-dataset"), options.pairs,
                options.textTokens);
        System.out.printf(Locale.ROOT, "Training benchmark: %d cores, Java %s, DJL %s engine %s, torch threads %s%n",
                Runtime.getRuntime().availableProcessors(), Runtime.version(), Engine.getInstance().getEngineName(),
                Engine.getInstance().getVersion(), System.getProperty("ai.djl.pytorch.num_threads", "(default)"));
        try (NDManager manager = NDManager.newBaseManager();
             LlamaModel model = LlamaModel.load(llama, manager, ModelOptions.cpu())) {
            ClipVisionModel tower = ClipVisionModel.load(clip, manager, ModelOptions.cpu());
            memory("models loaded");
            TrainableParameters trainable = new TrainableParameters();
            Random random = new Random(42);
            trainable.newProjector(random, model.config().hiddenSize(), tower.config().hiddenSize());
            List<String> targets = List.of("q_proj", "v_proj");
            trainable.newLora(model.config(), "llama-134m", targets, 8, random);
            LoraAdapter.LoraConfig lora = new LoraAdapter.LoraConfig(8, 16, targets, "llama-134m", false);
            DdpoTrainer.Settings settings = new DdpoTrainer.Settings(new DdpoLoss.Settings(0.1, 2.0, false),
                    options.pairs, 1.0, AdamW.Settings.torchDefaults(0.01));
            LearningRateSchedule schedule = LearningRateSchedule.of(LearningRateSchedule.Kind.CONSTANT, 2e-6, 0,
                    options.steps + 1);
            int patches = (224 / 16) * (224 / 16);
            System.out.printf(Locale.ROOT, "%d pairs a step in one micro batch: %d rows of %d image + %d text tokens; "
                    + "LoRA r 8 on q_proj,v_proj (%d trainable tensors)%n", options.pairs, 2 * options.pairs,
                    patches, options.textTokens, trainable.values().size());
            try (DdpoTrainer trainer = new DdpoTrainer(model, tower, -2, lora, dataset, settings, trainable.values(),
                    trainable.shapes())) {
                List<double[]> rows = new ArrayList<>();
                long start = System.nanoTime();
                trainer.computeReference(dataset.pairs(), () -> false);
                double[] first = phases(trainer.phaseSeconds());
                first[5] = (System.nanoTime() - start) / 1e9;
                memory("CLIP features and reference log-probs computed");
                long before = status("VmRSS:");
                DdpoTrainer.PhaseSeconds phasesBefore = trainer.phaseSeconds();
                DdpoTrainer.StepMetrics metrics = trainer.step(dataset.pairs(), schedule);
                double[] firstStep = minus(phases(trainer.phaseSeconds()), phases(phasesBefore));
                firstStep[5] = metrics.seconds();
                for (int i = 0; i < 6; i++) {
                    first[i] += firstStep[i];
                }
                memory("first step");
                System.out.printf(Locale.ROOT, "The step's activations (training.memory-cap's estimate): %.2f GiB; "
                        + "the peak rose %.2f GiB above the memory before the step%n",
                        DdpoTrainer.activationBytes(model.config(), tower.config(), options.pairs, options.textTokens)
                                / (double) (1L << 30), (status("VmHWM:") - before) / (double) (1L << 30));
                for (int s = 0; s < options.steps; s++) {
                    phasesBefore = trainer.phaseSeconds();
                    metrics = trainer.step(dataset.pairs(), schedule);
                    double[] row = minus(phases(trainer.phaseSeconds()), phases(phasesBefore));
                    row[5] = metrics.seconds();
                    rows.add(row);
                    System.out.printf(Locale.ROOT, "step %d: %.2f s (loss %.4f)%n", s + 2, metrics.seconds(),
                            metrics.loss());
                }
                report(first, rows, peakRssBytes());
            }
        }
    }

    /** clip, reference, policy forward, backward, optimizer, total (filled by the caller). */
    private static double[] phases(DdpoTrainer.PhaseSeconds p) {
        return new double[] {p.clip(), p.reference(), p.policyForward(), p.backward(), p.optimizer(), 0};
    }

    private static double[] minus(double[] a, double[] b) {
        double[] out = new double[a.length];
        for (int i = 0; i < a.length; i++) {
            out[i] = a[i] - b[i];
        }
        return out;
    }

    private static void report(double[] first, List<double[]> steady, long peakRss) {
        double[] median = new double[6];
        for (int i = 0; i < 6; i++) {
            final int column = i;
            double[] values = steady.stream().mapToDouble(r -> r[column]).sorted().toArray();
            median[i] = values.length == 0 ? Double.NaN : values[values.length / 2];
        }
        String[] names = {"CLIP features", "reference forward", "policy forward", "backward", "optimizer (clip + AdamW)",
                "step (wall)"};
        System.out.println();
        System.out.println("| phase | first step (CLIP and reference computed) | steady step (both cached; median of "
                + steady.size() + ") |");
        System.out.println("|---|---|---|");
        for (int i = 0; i < 6; i++) {
            System.out.printf(Locale.ROOT, "| %s | %.2f s | %.2f s |%n", names[i], first[i], median[i]);
        }
        System.out.println();
        double withReference = first[0] + first[1] + median[5];
        System.out.printf(Locale.ROOT, "Steady step %.2f s (target <= 9 s; PyTorch eager, HF modules, 2 threads: ~9 s "
                + "without the reference forward): %.2fx the peer. A step that computed CLIP and the reference as the "
                + "peers do every step: %.2f s (peer 12.9 to 13.7 s).%n", median[5], 9.0 / median[5], withReference);
        System.out.printf(Locale.ROOT, "Peak RSS %.2f GiB (target <= 3.2 GiB, the peer's peak).%n",
                peakRss / (double) (1L << 30));
    }

    private static void memory(String when) throws IOException {
        System.out.printf(Locale.ROOT, "RSS after %s: %.2f GiB (peak so far %.2f GiB)%n", when,
                status("VmRSS:") / (double) (1L << 30), status("VmHWM:") / (double) (1L << 30));
    }

    /** The process's peak resident set (VmHWM), or -1 where /proc is not there. */
    private static long peakRssBytes() throws IOException {
        return status("VmHWM:");
    }

    /** A size line of /proc/self/status in bytes, or -1 where /proc is not there. */
    private static long status(String key) throws IOException {
        Path status = Path.of("/proc/self/status");
        if (!Files.exists(status)) {
            return -1;
        }
        for (String line : Files.readAllLines(status)) {
            if (line.startsWith(key)) {
                return Long.parseLong(line.replaceAll("\\D", "")) * 1024;
            }
        }
        return -1;
    }

    /**
     * A processed dataset of random pairs: one random 256x256 image per pair, {@code text} tokens per row (a quarter
     * prompt), a few corrected tokens on each side, as PreprocessDataset writes it.
     */
    private static PreferenceDataset writeDataset(Path dir, int pairs, int text) throws IOException {
        Files.createDirectories(dir.resolve(PreferenceDataset.IMAGES));
        SplittableRandom random = new SplittableRandom(11);
        int promptLength = text / 4;
        List<PreferencePair> rows = new ArrayList<>();
        for (int p = 0; p < pairs; p++) {
            BufferedImage image = new BufferedImage(256, 256, BufferedImage.TYPE_INT_RGB);
            for (int y = 0; y < 256; y++) {
                for (int x = 0; x < 256; x++) {
                    image.setRGB(x, y, random.nextInt(1 << 24));
                }
            }
            ByteArrayOutputStream png = new ByteArrayOutputStream();
            ImageIO.write(image, "png", png);
            byte[] bytes = png.toByteArray();
            String sha = DatasetPreprocessor.hex(DatasetPreprocessor.sha256().digest(bytes));
            Files.write(dir.resolve(PreferenceDataset.IMAGES).resolve(sha), bytes);
            long[] chosen = tokens(random, text);
            long[] rejected = Arrays.copyOf(chosen, text);
            int[] corrected = new int[8];
            for (int i = 0; i < corrected.length; i++) {
                corrected[i] = promptLength + 4 * i;
                rejected[corrected[i] + 1] = 3 + random.nextInt(VOCAB - 3);
            }
            rows.add(new PreferencePair(p, sha, promptLength, chosen, rejected, corrected, corrected.clone()));
        }
        return new PreferenceDataset("ddpo-bench", dir, new ObjectMapper().createObjectNode(), List.copyOf(rows));
    }

    private static long[] tokens(SplittableRandom random, int length) {
        long[] ids = new long[length];
        ids[0] = 1;
        for (int i = 1; i < length - 1; i++) {
            ids[i] = 3 + random.nextInt(VOCAB - 3);
        }
        ids[length - 1] = 2;
        return ids;
    }
}

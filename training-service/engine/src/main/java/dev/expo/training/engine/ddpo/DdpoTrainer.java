package dev.expo.training.engine.ddpo;

import ai.djl.engine.Engine;
import ai.djl.engine.EngineException;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.training.GradientCollector;
import dev.expo.common.ExpoException;
import dev.expo.modeling.NdArrays;
import dev.expo.modeling.clip.ClipImageProcessor;
import dev.expo.modeling.clip.ClipVisionConfig;
import dev.expo.modeling.clip.ClipVisionModel;
import dev.expo.modeling.clip.ImageDecoder;
import dev.expo.modeling.llama.LlamaConfig;
import dev.expo.modeling.llama.LlamaModel;
import dev.expo.modeling.lora.LoraAdapter;
import dev.expo.modeling.lora.LoraApplication;
import dev.expo.training.engine.data.PreferenceDataset;
import dev.expo.training.engine.data.PreferencePair;
import dev.expo.training.engine.optim.AdamW;
import dev.expo.training.engine.optim.DynamicLossScaler;
import dev.expo.training.engine.optim.GradientClipping;
import dev.expo.training.engine.optim.LearningRateSchedule;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CancellationException;
import java.util.function.BooleanSupplier;

/**
 * Optimizer steps of multimodal DDPO over a processed dataset: a global batch of pairs in micro batches (gradient
 * accumulation; each micro batch's loss is scaled by its share of the global batch, so the sum is the global batch's
 * mean loss), global-norm clipping, the schedule's rate, AdamW on float32 master weights held here. CLIP features are
 * computed once per image and reference log-probs once per pair (adapter off, the initial projector), then reused.
 * The frozen models stay the caller's.
 */
public final class DdpoTrainer implements AutoCloseable {

    /** PEFT's saved key prefix: the trainable tensors are named as in adapter_model.safetensors. */
    public static final String LORA_PREFIX = "base_model.model.";
    public static final String PROJECTOR_WEIGHT = "projector.weight";
    public static final String PROJECTOR_BIAS = "projector.bias";

    /**
     * @param memoryCapBytes the most a micro batch's forward and backward may take, by {@link #activationBytes}'s
     *                       estimate (0 = no cap): a micro batch over it is treated as out of memory, as a device
     *                       with that much free memory would fail
     * @param seed           seeds torch's generator before each micro batch (from the seed, the step and the micro
     *                       batch's place), so LoRA dropout's masks are the same in a resumed run
     * @param lossScaling    FP16 mixed precision's dynamic loss scaling (GradScaler's): the backward runs on the
     *                       loss times the scale, gradients are unscaled, a step with inf/NaN gradients is skipped
     *                       and the scale halved. The forward runs in the models' compute type (FP16 on a GPU)
     *                       from the float32 master values
     */
    public record Settings(DdpoLoss.Settings loss, int microBatch, double maxGradNorm, AdamW.Settings adamW,
                           long memoryCapBytes, long seed, boolean lossScaling) {
        public Settings {
            if (microBatch < 1) {
                throw ExpoException.invalidArgument("micro_batch_size", microBatch, "must be at least 1");
            }
            if (memoryCapBytes < 0) {
                throw new IllegalArgumentException("memoryCapBytes must be >= 0");
            }
        }

        public Settings(DdpoLoss.Settings loss, int microBatch, double maxGradNorm, AdamW.Settings adamW) {
            this(loss, microBatch, maxGradNorm, adamW, 0, 0, false);
        }
    }

    /**
     * What one optimizer step did.
     *
     * @param microBatch the micro batch it ran with: the settings' one, or less after out-of-memory halvings
     * @param halvings   how many times this step ran out of memory and was retried with half the micro batch
     * @param lossScale  the loss scale the step's backward ran with (1 without loss scaling)
     * @param skipped    the gradients overflowed under loss scaling: no optimizer update, the scale halved
     */
    public record StepMetrics(long step, double loss, double chosenReward, double rejectedReward, double accuracy,
                              double margin, double policyChosen, double policyRejected, double referenceChosen,
                              double referenceRejected, double learningRate, double gradNorm, int pairs, long tokens,
                              double seconds, int microBatch, int halvings, double lossScale, boolean skipped) {
    }

    private static final System.Logger LOG = System.getLogger(DdpoTrainer.class.getName());

    /** Seconds spent in each phase since this trainer was made: where the steps' time goes. */
    public record PhaseSeconds(double clip, double reference, double policyForward, double backward,
                               double optimizer) {
    }

    private final LlamaModel model;
    private final ClipVisionModel tower;
    private final int visionLayer;
    private final LoraAdapter.LoraConfig lora;
    private final PreferenceDataset dataset;
    private final Settings settings;
    private final Map<String, float[]> master;
    private final Map<String, long[]> shapes;
    private final AdamW adamW;
    private final NDManager manager;
    private final Map<String, float[]> features = new HashMap<>();
    private final Map<Long, double[]> reference = new HashMap<>();
    private final float[] initialWeight;
    private final float[] initialBias;
    private final DynamicLossScaler scaler;
    private int microBatch;
    private long steps;
    private long clipNanos;
    private long referenceNanos;
    private long forwardNanos;
    private long backwardNanos;
    private long optimizerNanos;

    /**
     * @param master the trainable tensors' float32 values by name (PEFT keys and projector.weight / .bias), updated in
     *               place by each step; {@code shapes} gives each one's shape
     */
    public DdpoTrainer(LlamaModel model, ClipVisionModel tower, int visionLayer, LoraAdapter.LoraConfig lora,
                       PreferenceDataset dataset, Settings settings, Map<String, float[]> master,
                       Map<String, long[]> shapes) {
        this.model = model;
        this.tower = tower;
        this.visionLayer = visionLayer;
        this.lora = lora;
        this.dataset = dataset;
        this.settings = settings;
        this.master = master;
        this.shapes = shapes;
        this.adamW = new AdamW(settings.adamW());
        this.manager = model.manager().newSubManager();
        this.initialWeight = master.get(PROJECTOR_WEIGHT).clone();
        this.initialBias = master.get(PROJECTOR_BIAS).clone();
        this.microBatch = settings.microBatch();
        this.scaler = settings.lossScaling() ? DynamicLossScaler.torchDefaults() : null;
    }

    /** The loss scaler, or null without loss scaling. */
    public DynamicLossScaler lossScaler() {
        return scaler;
    }

    /** Steps done (skipped ones included; the optimizer counts only the updates it made). */
    public long steps() {
        return steps;
    }

    public AdamW optimizer() {
        return adamW;
    }

    public PhaseSeconds phaseSeconds() {
        return new PhaseSeconds(clipNanos / 1e9, referenceNanos / 1e9, forwardNanos / 1e9, backwardNanos / 1e9,
                optimizerNanos / 1e9);
    }

    /**
     * Computes every pair's reference (pc, pr) now, skipping pairs already known: each sequence alone (batch 1, as
     * Muffin's reference inference runs), so the numbers depend on neither the micro batch nor the epoch order, and a
     * resumed run reproduces an uninterrupted one to the bit.
     */
    public Map<Long, double[]> computeReference(List<PreferencePair> pairs, BooleanSupplier cancelled) {
        for (PreferencePair pair : pairs) {
            if (cancelled.getAsBoolean()) {
                throw new CancellationException();
            }
            if (!reference.containsKey(pair.row())) {
                reference.put(pair.row(), reference(pair));
            }
        }
        return Map.copyOf(reference);
    }

    /** One pair's reference (pc, pr): adapter off, the initial projector, no gradient, one sequence at a time. */
    private double[] reference(PreferencePair pair) {
        Inputs inputs = inputs(List.of(pair));
        double[] out = new double[2];
        try (NDManager scope = manager.newSubManager()) {
            NDArray features = rowFeatures(scope, List.of(pair)).get("0:1");
            long start = System.nanoTime();
            features = toCompute(features);
            NDArray weight = toCompute(NdArrays.ofFloats(scope, initialWeight, shapes.get(PROJECTOR_WEIGHT)));
            NDArray bias = toCompute(NdArrays.ofFloats(scope, initialBias, shapes.get(PROJECTOR_BIAS)));
            for (int row = 0; row < 2; row++) {
                out[row] = NdArrays.toFloats(DdpoForward.weightedLogps(scope, model, features, weight, bias,
                        List.of(), new long[][] {inputs.ids()[row]}, new float[][] {inputs.weights()[row]},
                        settings.loss().average()))[0];
            }
            referenceNanos += System.nanoTime() - start;
        }
        return out;
    }

    /** Reference log-probs computed before (by row), e.g. read from the dataset's cache. */
    public void useReference(Map<Long, double[]> known) {
        reference.putAll(known);
    }

    /**
     * Restores a checkpoint: the trainable tensors' values, the optimizer's moments and update count, the steps done
     * and the loss scaler's state (ignored without loss scaling).
     */
    public void restore(Map<String, float[]> values, Map<String, AdamW.Moments> moments, long optimizerSteps,
                        long stepsDone, double lossScale, int cleanSteps) {
        for (Map.Entry<String, float[]> entry : master.entrySet()) {
            float[] saved = values.get(entry.getKey());
            if (saved == null || saved.length != entry.getValue().length) {
                throw ExpoException.failedPrecondition("the checkpoint has no tensor " + entry.getKey()
                        + " of the right size; it belongs to another run");
            }
            System.arraycopy(saved, 0, entry.getValue(), 0, saved.length);
        }
        adamW.restore(moments, optimizerSteps);
        this.steps = stepsDone;
        if (scaler != null && lossScale > 0) {
            scaler.restore(lossScale, cleanSteps);
        }
    }

    /**
     * One optimizer step over these pairs (one global batch) at the schedule's rate for this 0-based step. A micro
     * batch that runs out of memory (the Java heap, the device's, or over the memory cap) halves the micro batch for
     * this and every later step, keeps the global batch (more accumulation) and redoes the step from its start;
     * RESOURCE_EXHAUSTED when a micro batch of one pair does not fit.
     */
    public StepMetrics step(List<PreferencePair> pairs, LearningRateSchedule schedule) {
        long start = System.nanoTime();
        int halvings = 0;
        while (true) {
            try {
                return attempt(pairs, schedule, start, halvings);
            } catch (OutOfMemory e) {
                if (microBatch == 1) {
                    throw ExpoException.resourceExhausted("step " + (steps + 1) + " ran out of memory with a "
                            + "micro batch of one pair (" + e.getMessage() + "); shorten the sequences "
                            + "(max prompt/response tokens at preprocessing) or give the service more memory");
                }
                int halved = microBatch / 2;
                LOG.log(System.Logger.Level.WARNING, "step {0}: out of memory with a micro batch of {1} ({2}); "
                        + "retrying with {3} (the global batch is kept)", steps + 1, microBatch,
                        e.getMessage(), halved);
                microBatch = halved;
                halvings++;
            }
        }
    }

    /** The micro batch steps run with now (the settings' one until an out-of-memory halving). */
    public int microBatch() {
        return microBatch;
    }

    private StepMetrics attempt(List<PreferencePair> pairs, LearningRateSchedule schedule, long start, int halvings) {
        long stepIndex = steps;
        double scale = scaler == null ? 1 : scaler.scale();
        Map<String, float[]> grads = new LinkedHashMap<>();
        master.forEach((name, values) -> grads.put(name, new float[values.length]));
        int n = pairs.size();
        double[] pc = new double[n];
        double[] pr = new double[n];
        double[] rc = new double[n];
        double[] rr = new double[n];
        long tokens = 0;
        for (int from = 0; from < n; from += microBatch) {
            List<PreferencePair> micro = pairs.subList(from, Math.min(n, from + microBatch));
            Map<String, float[]> microGrads = new LinkedHashMap<>();
            double[][] logps = microStep(micro, n, microGrads, java.util.Objects.hash(settings.seed(), stepIndex,
                    from), scale);
            String bad = scaler == null ? nonFinite(microGrads) : null;   // under loss scaling: an overflow, below
            if (bad != null) {
                // Never applied: in FP32 this is divergence (or a bug), not an overflow a loss scale would fix.
                throw new IllegalStateException("non-finite gradients in " + bad + " at step " + (stepIndex + 1)
                        + "; the step was not applied (a learning rate too high? the job keeps its checkpoints)");
            }
            microGrads.forEach((name, g) -> {
                float[] sum = grads.get(name);
                for (int i = 0; i < g.length; i++) {
                    sum[i] += g[i];
                }
            });
            for (int i = 0; i < micro.size(); i++) {
                pc[from + i] = logps[0][i];
                pr[from + i] = logps[1][i];
                rc[from + i] = logps[2][i];
                rr[from + i] = logps[3][i];
                tokens += micro.get(i).chosenIds().length + micro.get(i).rejectedIds().length;
            }
        }
        long optimizerStart = System.nanoTime();
        double lr = schedule.at(stepIndex);
        double gradNorm = Double.NaN;
        boolean skipped = scaler != null && !scaler.unscale(grads.values());
        if (skipped) {
            LOG.log(System.Logger.Level.WARNING, "step {0}: gradients overflowed at loss scale {1}; the update is "
                    + "skipped and the scale halved", stepIndex + 1, scale);
        } else {
            gradNorm = GradientClipping.clip(grads.values(), settings.maxGradNorm());
            adamW.step(master, grads, lr);
        }
        if (scaler != null) {
            scaler.update(skipped);
        }
        steps++;
        optimizerNanos += System.nanoTime() - optimizerStart;
        DdpoLoss.Batch batch = DdpoLoss.of(settings.loss(), pc, pr, rc, rr, n);
        return new StepMetrics(stepIndex + 1, batch.loss(), mean(batch.chosenRewards()), mean(batch.rejectedRewards()),
                batch.accuracy(), batch.margin(), mean(pc), mean(pr), mean(rc), mean(rr), lr, gradNorm, n, tokens,
                (System.nanoTime() - start) / 1e9, microBatch, halvings, scale, skipped);
    }

    /** A micro batch did not fit; the step is redone with a smaller one. */
    private static final class OutOfMemory extends RuntimeException {
        OutOfMemory(String message, Throwable cause) {
            super(message, cause);
        }
    }

    /**
     * An estimate of the memory a micro batch's policy forward and backward hold at their peak, in FP32: per row and
     * layer, the activations autograd keeps (about 6 hidden-wide and 5 intermediate-wide tensors a position, and the
     * attention's scores, masked scores and probabilities, heads x S x S), plus the logits, their log-softmax and its
     * gradient over the text positions; S = image tokens + the longest text row. Calibrated on the training
     * benchmark (docs/benchmarks.md), where it is printed beside the measured rise.
     */
    public static long activationBytes(LlamaConfig model, ClipVisionConfig tower, int pairs, int longestText) {
        long side = tower.imageSize() / tower.patchSize();
        long s = side * side + longestText;
        long perLayer = s * (6L * model.hiddenSize() + 5L * model.intermediateSize()) + 3L * model.numHeads() * s * s;
        long perRow = model.numLayers() * perLayer + 3L * (longestText - 1) * model.vocabSize();
        return 4L * 2 * pairs * perRow;
    }

    private static boolean outOfMemory(EngineException e) {
        String message = String.valueOf(e.getMessage()).toLowerCase(java.util.Locale.ROOT);
        return message.contains("out of memory") || message.contains("not enough memory")
                || message.contains("can't allocate memory") || message.contains("failed to allocate");
    }

    /** The tensors with non-finite gradient values ("name (count/size)", comma-separated), or null if none. */
    private static String nonFinite(Map<String, float[]> grads) {
        List<String> bad = new java.util.ArrayList<>();
        for (Map.Entry<String, float[]> entry : grads.entrySet()) {
            int count = 0;
            for (float g : entry.getValue()) {
                if (!Float.isFinite(g)) {
                    count++;
                }
            }
            if (count > 0) {
                bad.add(entry.getKey() + " (" + count + "/" + entry.getValue().length + ")");
            }
        }
        return bad.isEmpty() ? null : String.join(", ", bad);
    }

    /** Forward and backward of one micro batch; its gradients are put in {@code grads} by tensor name. Returns pc, pr, rc, rr. */
    private double[][] microStep(List<PreferencePair> micro, int globalPairs, Map<String, float[]> grads, int seed,
                                 double scale) {
        int m = micro.size();
        if (settings.memoryCapBytes() > 0) {
            int longest = micro.stream().mapToInt(PreferencePair::maxLength).max().orElse(0);
            long needed = activationBytes(model.config(), tower.config(), m, longest);
            if (needed > settings.memoryCapBytes()) {
                throw new OutOfMemory(String.format(java.util.Locale.ROOT, "about %.1f MiB estimated for %d pairs "
                        + "of up to %d text tokens, over the memory cap of %.1f MiB", needed / 1048576.0, m, longest,
                        settings.memoryCapBytes() / 1048576.0), null);
            }
        }
        try {
            return microStepUnchecked(micro, globalPairs, grads, seed, scale);
        } catch (OutOfMemoryError e) {
            throw new OutOfMemory("the Java heap: " + e.getMessage(), e);
        } catch (EngineException e) {
            if (outOfMemory(e)) {
                throw new OutOfMemory(e.getMessage(), e);
            }
            throw e;
        }
    }

    private double[][] microStepUnchecked(List<PreferencePair> micro, int globalPairs, Map<String, float[]> grads,
                                          int seed, double scale) {
        int m = micro.size();
        Inputs inputs = inputs(micro);
        long[][] ids = inputs.ids();
        float[][] weights = inputs.weights();
        try (NDManager scope = manager.newSubManager()) {
            NDArray rowFeatures = rowFeatures(scope, micro);
            double[][] ref = referenceLogps(micro);
            long forwardStart = System.nanoTime();
            long backwardStart;
            Map<String, NDArray> trainable = new LinkedHashMap<>();
            for (Map.Entry<String, float[]> entry : master.entrySet()) {
                NDArray array = NdArrays.ofFloats(scope, entry.getValue(), shapes.get(entry.getKey()));
                array.setRequiresGradient(true);
                trainable.put(entry.getKey(), array);
            }
            float[] ones = new float[2 * m];
            Arrays.fill(ones, 1f);
            float[] values;
            if (lora.dropout() > 0) {
                Engine.getInstance().setRandomSeed(seed);
            }
            try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
                // The forward runs in the models' compute type; the casts are in the graph, so the gradients reach
                // the float32 leaves (mixed precision's master weights).
                Map<String, NDArray> forward = new LinkedHashMap<>();
                trainable.forEach((name, array) -> forward.put(name, toCompute(array)));
                LoraAdapter adapter = LoraAdapter.of(lora, scope, loraModules(forward));
                NDArray policy = DdpoForward.weightedLogps(scope, model, toCompute(rowFeatures),
                        forward.get(PROJECTOR_WEIGHT), forward.get(PROJECTOR_BIAS),
                        List.of(new LoraApplication(adapter, ones, true)), ids, weights, settings.loss().average());
                values = NdArrays.toFloats(policy);
                backwardStart = System.nanoTime();
                forwardNanos += backwardStart - forwardStart;
                DdpoLoss.Batch batch = DdpoLoss.of(settings.loss(), slice(values, 0, m), slice(values, m, 2 * m),
                        ref[0], ref[1], globalPairs);
                float[] coefficients = new float[2 * m];
                for (int i = 0; i < m; i++) {
                    coefficients[i] = (float) (batch.chosenGradient()[i] * scale);
                    coefficients[m + i] = (float) (batch.rejectedGradient()[i] * scale);
                }
                collector.backward(policy.mul(scope.create(coefficients)).sum());
            }
            for (Map.Entry<String, NDArray> entry : trainable.entrySet()) {
                grads.put(entry.getKey(), NdArrays.toFloats(entry.getValue().getGradient()));
            }
            backwardNanos += System.nanoTime() - backwardStart;
            return new double[][] {slice(values, 0, m), slice(values, m, 2 * m), ref[0], ref[1]};
        }
    }

    /** The array in the language model's compute type (itself in FP32). */
    private NDArray toCompute(NDArray array) {
        DataType compute = model.options().computeType();
        return array.getDataType() == compute ? array : array.toType(compute, false);
    }

    /** Token ids and weights of a micro batch's rows: chosen rows first, then rejected rows. */
    private record Inputs(long[][] ids, float[][] weights) {
    }

    private Inputs inputs(List<PreferencePair> micro) {
        int m = micro.size();
        long[][] ids = new long[2 * m][];
        float[][] weights = new float[2 * m][];
        for (int i = 0; i < m; i++) {
            PreferencePair pair = micro.get(i);
            ids[i] = pair.chosenIds();
            ids[m + i] = pair.rejectedIds();
            weights[i] = DdpoLoss.tokenWeights(pair.chosenIds().length, pair.promptLength(), pair.chosenCorrected(),
                    settings.loss().gamma());
            weights[m + i] = DdpoLoss.tokenWeights(pair.rejectedIds().length, pair.promptLength(),
                    pair.rejectedCorrected(), settings.loss().gamma());
        }
        return new Inputs(ids, weights);
    }

    /** The micro batch's reference (pc, pr), computed now for pairs not seen before. */
    private double[][] referenceLogps(List<PreferencePair> micro) {
        computeReference(micro, () -> false);
        double[][] out = new double[2][micro.size()];
        for (int i = 0; i < micro.size(); i++) {
            double[] r = reference.get(micro.get(i).row());
            out[0][i] = r[0];
            out[1][i] = r[1];
        }
        return out;
    }

    /** CLIP features [2m, P, Hv] of the micro batch (chosen rows, then rejected rows), each image computed once. */
    private NDArray rowFeatures(NDManager scope, List<PreferencePair> micro) {
        int m = micro.size();
        float[][] perPair = new float[m][];
        for (int i = 0; i < m; i++) {
            perPair[i] = features.computeIfAbsent(micro.get(i).image(), this::imageFeatures);
        }
        int length = perPair[0].length;
        float[] flat = new float[2 * m * length];
        for (int i = 0; i < m; i++) {
            System.arraycopy(perPair[i], 0, flat, i * length, length);
            System.arraycopy(perPair[i], 0, flat, (m + i) * length, length);
        }
        long hidden = tower.config().hiddenSize();
        return NdArrays.ofFloats(scope, flat, 2L * m, length / hidden, hidden);
    }

    private float[] imageFeatures(String sha256) {
        long start = System.nanoTime();
        try (NDManager scope = manager.newSubManager()) {
            byte[] bytes = Files.readAllBytes(dataset.imagePath(sha256));
            ClipImageProcessor.PixelValues pixels = tower.processor().process(ImageDecoder.decode(bytes, 1L << 26));
            float[] out = NdArrays.toFloats(tower.forward(scope, List.of(pixels)).hiddenState(visionLayer)
                    .get(":, 1:, :"));
            clipNanos += System.nanoTime() - start;
            return out;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read image " + sha256 + " of dataset " + dataset.name(), e);
        }
    }

    private static Map<String, NDArray[]> loraModules(Map<String, NDArray> trainable) {
        Map<String, NDArray[]> modules = new LinkedHashMap<>();
        trainable.forEach((name, array) -> {
            if (name.startsWith(LORA_PREFIX)) {
                String path = name.substring(LORA_PREFIX.length(), name.indexOf(".lora_"));
                modules.computeIfAbsent(path, k -> new NDArray[2])[name.contains(".lora_A.") ? 0 : 1] = array;
            }
        });
        return modules;
    }

    private static double[] slice(float[] values, int from, int to) {
        double[] out = new double[to - from];
        for (int i = from; i < to; i++) {
            out[i - from] = values[i];
        }
        return out;
    }

    private static double mean(double[] values) {
        double sum = 0;
        for (double v : values) {
            sum += v;
        }
        return sum / values.length;
    }

    @Override
    public void close() {
        manager.close();
    }
}

package dev.expo.training.engine.jobs;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import dev.expo.checkpoint.Checkpoint;
import dev.expo.checkpoint.HfConfig;
import dev.expo.checkpoint.SafetensorsFile;
import dev.expo.checkpoint.SafetensorsWriter;
import dev.expo.checkpoint.TensorInfo;
import dev.expo.common.ExpoException;
import dev.expo.common.store.ModelStore;
import dev.expo.modeling.ModelOptions;
import dev.expo.modeling.clip.ClipVisionConfig;
import dev.expo.modeling.clip.ClipVisionModel;
import dev.expo.modeling.llama.LlamaConfig;
import dev.expo.modeling.llama.LlamaModel;
import dev.expo.modeling.lora.LoraAdapter;
import dev.expo.modeling.multimodal.MultimodalManifest;
import dev.expo.training.engine.data.DatasetPreprocessor;
import dev.expo.training.engine.data.DatasetStore;
import dev.expo.training.engine.data.PreferenceDataset;
import dev.expo.training.engine.data.PreferencePair;
import dev.expo.training.engine.ddpo.DdpoLoss;
import dev.expo.training.engine.ddpo.DdpoTrainer;
import dev.expo.training.engine.ddpo.TrainableParameters;
import dev.expo.training.engine.optim.AdamW;
import dev.expo.training.engine.optim.LearningRateSchedule;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CancellationException;
import java.util.function.BooleanSupplier;

/**
 * One training run, planned (every check against the store done, models loaded) then run to the end: epochs of
 * global batches (shuffled per epoch from the seed, or in order), then the output published as a multimodal manifest
 * (adapter/, projector.safetensors, expo-model.json referencing the base models by name, the tokenizer files).
 */
public final class TrainingRun implements AutoCloseable {

    private static final System.Logger LOG = System.getLogger(TrainingRun.class.getName());
    private static final List<String> TOKENIZER_FILES = List.of("tokenizer.json", "tokenizer_config.json",
            "special_tokens_map.json", "chat_template.jinja", "generation_config.json");

    private final ModelStore store;
    private final TrainingRequest request;
    private final PreferenceDataset dataset;
    private final NDManager manager;
    private final LlamaModel model;
    private final ClipVisionModel tower;
    private final LoraAdapter.LoraConfig lora;
    private final Map<String, float[]> master;
    private final Map<String, long[]> shapes;
    private final long totalSteps;
    private final int stepsPerEpoch;

    private TrainingRun(ModelStore store, TrainingRequest request, PreferenceDataset dataset, NDManager manager,
                        LlamaModel model, ClipVisionModel tower, LoraAdapter.LoraConfig lora,
                        Map<String, float[]> master, Map<String, long[]> shapes) {
        this.store = store;
        this.request = request;
        this.dataset = dataset;
        this.manager = manager;
        this.model = model;
        this.tower = tower;
        this.lora = lora;
        this.master = master;
        this.shapes = shapes;
        this.stepsPerEpoch = (dataset.pairs().size() + request.globalBatch() - 1) / request.globalBatch();
        this.totalSteps = request.maxSteps() > 0 ? request.maxSteps() : (long) stepsPerEpoch * request.epochs();
    }

    /** Checks the request against the store and loads what it trains. Bad input fails here, before any job. */
    public static TrainingRun plan(ModelStore store, DatasetStore datasets, TrainingRequest request) {
        return plan(store, datasets, request, true);
    }

    /**
     * Every check {@link #plan} makes, from the configs and the safetensors headers, without loading the models: what
     * StartTraining runs, so a job queued behind a running one costs no second copy of a model in memory.
     */
    public static void check(ModelStore store, DatasetStore datasets, TrainingRequest request) {
        plan(store, datasets, request, false);
    }

    private static TrainingRun plan(ModelStore store, DatasetStore datasets, TrainingRequest request, boolean load) {
        Path lmDir = store.existing("language_model", request.languageModel());
        Path towerDir = store.existing("vision_tower", request.visionTower());
        ModelStore.checkName("output_model", request.outputModel());
        if (store.exists(request.outputModel())) {
            throw new ExpoException(ExpoException.Kind.ALREADY_EXISTS, "model \"" + request.outputModel()
                    + "\" already exists in the store; choose another output name");
        }
        PreferenceDataset dataset = datasets.load(request.dataset());
        if (dataset.pairs().isEmpty()) {
            throw ExpoException.failedPrecondition("dataset \"" + request.dataset() + "\" has no rows");
        }
        String lmTokenizer = DatasetPreprocessor.tokenizerSha256(lmDir);
        if (!lmTokenizer.equals(dataset.tokenizerSha256())) {
            throw ExpoException.failedPrecondition("dataset \"" + request.dataset() + "\" was tokenized with "
                    + dataset.info().path("tokenizer").path("model").asText() + "'s tokenizer, which is not "
                    + request.languageModel() + "'s (tokenizer.json differs); preprocess it again with "
                    + "--tokenizer-model " + request.languageModel());
        }
        ModelOptions device = device(request.mixedPrecision(), Engine.getInstance().getGpuCount());
        // Shapes from the configs and the safetensors headers: a check reads no weights.
        LlamaConfig lmConfig = LlamaConfig.from(HfConfig.read(lmDir));
        ClipVisionConfig towerConfig = ClipVisionConfig.from(HfConfig.read(towerDir));
        try (Checkpoint weights = Checkpoint.open(lmDir)) {
            lmConfig.requireWeights(weights);
        }
        try (Checkpoint weights = Checkpoint.open(towerDir)) {
            towerConfig.requireWeights(weights);
        }
        TrainableParameters trainable = new TrainableParameters();
        Random random = new Random(request.seed());
        long visionHidden = towerConfig.hiddenSize();
        long hidden = lmConfig.hiddenSize();
        if (request.projector() != null) {
            readProjector(store, request.projector(), visionHidden, hidden, trainable);
        } else {
            trainable.newProjector(random, hidden, visionHidden);
        }
        LoraAdapter.LoraConfig lora;
        if (request.adapter() != null) {
            Path adapterDir = store.existing("adapter", request.adapter());
            lora = LoraAdapter.LoraConfig.read(adapterDir).withDropout(request.loraDropout());
            try (NDManager scratch = NDManager.newBaseManager(Device.cpu());
                 LoraAdapter existing = LoraAdapter.load(adapterDir, scratch, ModelOptions.cpu())) {
                existing.checkFits(lmConfig, request.adapter());
                for (String path : existing.modulePaths()) {
                    LoraAdapter.Module module = existing.module(path);
                    trainable.put(DdpoTrainer.LORA_PREFIX + path + ".lora_A.weight", module.a().toFloatArray(),
                            module.a().getShape().getShape());
                    trainable.put(DdpoTrainer.LORA_PREFIX + path + ".lora_B.weight", module.b().toFloatArray(),
                            module.b().getShape().getShape());
                }
            }
        } else {
            lora = new LoraAdapter.LoraConfig(request.loraRank(), request.loraAlpha(), request.loraTargets(),
                    request.languageModel(), false).withDropout(request.loraDropout());
            trainable.newLora(lmConfig, request.languageModel(), request.loraTargets(), request.loraRank(), random);
        }
        if (!load) {
            return null;
        }
        NDManager manager = NDManager.newBaseManager(device.device());
        try {
            LlamaModel model = LlamaModel.load(lmDir, manager, device);
            ClipVisionModel tower = ClipVisionModel.load(towerDir, manager, device);
            return new TrainingRun(store, request, dataset, manager, model, tower, lora, trainable.values(),
                    trainable.shapes());
        } catch (RuntimeException e) {
            manager.close();
            throw e;
        }
    }

    /**
     * Where a run trains: on the first GPU when there is one (FP32, or FP16 forward under mixed precision), else on
     * the CPU in FP32. Mixed precision without a GPU is FAILED_PRECONDITION: FP16 on a CPU is slower than FP32.
     */
    static ModelOptions device(boolean mixedPrecision, int gpus) {
        if (gpus == 0) {
            if (mixedPrecision) {
                throw ExpoException.failedPrecondition("precision fp16-mixed needs a GPU, and PyTorch sees none "
                        + "here; this training service runs on CPU, in FP32 (leave precision unset or fp32)");
            }
            return ModelOptions.cpu();
        }
        return new ModelOptions(Device.gpu(), mixedPrecision ? DataType.FLOAT16 : DataType.FLOAT32);
    }

    private static void readProjector(ModelStore store, String projector, long visionHidden, long hidden,
                                      TrainableParameters trainable) {
        Path path = Path.of(projector);
        path = path.isAbsolute() ? path : store.root().resolve(projector).normalize();
        if (!Files.isRegularFile(path)) {
            throw ExpoException.notFound("projector " + path + " does not exist");
        }
        try (SafetensorsFile file = SafetensorsFile.open(path)) {
            for (String key : List.of("weight", "bias")) {
                if (!file.contains(key)) {
                    throw ExpoException.invalidArgument(path + " has no \"" + key + "\" tensor (a projector is "
                            + "weight [llm_hidden, vision_hidden] and bias [llm_hidden])");
                }
            }
            TensorInfo weight = file.info("weight");
            long[] shape = weight.shape();
            if (shape.length != 2 || shape[0] != hidden || shape[1] != visionHidden
                    || file.info("bias").shape()[0] != hidden) {
                throw ExpoException.failedPrecondition("projector " + projector + " has weight "
                        + java.util.Arrays.toString(shape) + " but the vision tower has hidden size " + visionHidden
                        + " and the language model " + hidden);
            }
            trainable.put(DdpoTrainer.PROJECTOR_WEIGHT, file.tensor("weight").toFloats(), shape);
            trainable.put(DdpoTrainer.PROJECTOR_BIAS, file.tensor("bias").toFloats(), hidden);
        }
    }

    public int stepsPerEpoch() {
        return stepsPerEpoch;
    }

    public long totalSteps() {
        return totalSteps;
    }

    public TrainingRequest request() {
        return request;
    }

    /** What a run reports as it goes. */
    public interface Progress {
        /** The reference log-probs are known: read from the dataset's cache, or computed now. */
        default void reference(int pairs, boolean cached) {
        }

        /** An optimizer step is done; {@code epoch} is fractional (1.5 = half of the second epoch done). */
        void step(DdpoTrainer.StepMetrics metrics, double epoch);

        /** A checkpoint to keep (every save_every steps, at each epoch's end and after the last step). */
        void checkpoint(TrainingCheckpoint checkpoint, boolean epochEnd);
    }

    public LearningRateSchedule schedule() {
        return LearningRateSchedule.of(request.schedule(), request.learningRate(), request.warmupRatio(), totalSteps);
    }

    public LoraAdapter.LoraConfig lora() {
        return lora;
    }

    /**
     * Runs the steps from {@code resumeFrom} (null = the start) to the end, then publishes the output.
     * At each epoch end but the last, the model so far is published as OUTPUT-epochN. CancellationException when
     * {@code cancelled} turns true (between steps; the output is not published).
     */
    public void run(TrainingCheckpoint resumeFrom, Progress progress, BooleanSupplier cancelled) {
        run(resumeFrom, 0, progress, cancelled);
    }

    /**
     * @param memoryCapBytes the most a micro batch may take (DdpoTrainer's estimate; 0 = no cap): beyond it the
     *                       micro batch is halved, as on a real out-of-memory
     */
    public void run(TrainingCheckpoint resumeFrom, long memoryCapBytes, Progress progress,
                    BooleanSupplier cancelled) {
        LearningRateSchedule schedule = schedule();
        DdpoTrainer.Settings settings = new DdpoTrainer.Settings(new DdpoLoss.Settings(request.beta(),
                request.gamma(), request.average()), request.microBatch(), request.maxGradNorm(),
                AdamW.Settings.torchDefaults(request.weightDecay()), memoryCapBytes, request.seed(),
                request.mixedPrecision());
        // The reference is the initial policy with its adapter off: read it before a checkpoint replaces the values.
        ReferenceCache cache = ReferenceCache.of(dataset, store.existing("language_model", request.languageModel()),
                store.existing("vision_tower", request.visionTower()), master.get(DdpoTrainer.PROJECTOR_WEIGHT),
                master.get(DdpoTrainer.PROJECTOR_BIAS), request);
        try (DdpoTrainer trainer = new DdpoTrainer(model, tower, request.visionLayer(), lora, dataset, settings, master,
                shapes)) {
            Map<Long, double[]> known = cache.read();
            if (known != null && known.keySet().containsAll(dataset.pairs().stream().map(PreferencePair::row)
                    .toList())) {
                trainer.useReference(known);
                progress.reference(known.size(), true);
            } else {
                cache.write(trainer.computeReference(dataset.pairs(), cancelled));
                progress.reference(dataset.pairs().size(), false);
            }
            long step = 0;
            if (resumeFrom != null) {
                trainer.restore(resumeFrom.values(), resumeFrom.moments(), resumeFrom.optimizerSteps(),
                        resumeFrom.step(), resumeFrom.lossScale(), resumeFrom.scalerCleanSteps());
                step = resumeFrom.step();
            }
            List<PreferencePair> order = null;
            int orderEpoch = -1;
            while (step < totalSteps) {
                if (cancelled.getAsBoolean()) {
                    throw new CancellationException();
                }
                int epoch = (int) (step / stepsPerEpoch);
                int batch = (int) (step % stepsPerEpoch);
                if (epoch != orderEpoch) {
                    order = epochOrder(epoch);
                    orderEpoch = epoch;
                }
                int from = batch * request.globalBatch();
                DdpoTrainer.StepMetrics metrics = trainer.step(order.subList(from, Math.min(order.size(),
                        from + request.globalBatch())), schedule);
                step++;
                boolean epochEnd = batch + 1 == stepsPerEpoch;
                progress.step(metrics, epoch + (batch + 1) / (double) stepsPerEpoch);
                if (epochEnd && step < totalSteps) {
                    publishEpoch(epoch + 1);
                }
                if (epochEnd || step == totalSteps || (request.saveEvery() > 0 && step % request.saveEvery() == 0)) {
                    progress.checkpoint(TrainingCheckpoint.of(step, (int) (step / stepsPerEpoch),
                            (int) (step % stepsPerEpoch), master, shapes, trainer.optimizer(), trainer.lossScaler()),
                            epochEnd);
                }
            }
        }
        publish(request.outputModel());
    }

    /** The name an epoch's model is published under (the last epoch's is the output itself). */
    public static String epochModel(String outputModel, int epoch) {
        return outputModel + "-epoch" + epoch;
    }

    /**
     * The model after an epoch that is not the last, as the seed saves one per epoch: OUTPUT-epochN. A name taken
     * (this job's own, published before a restart, or another model) is left alone.
     */
    private void publishEpoch(int epoch) {
        String name = epochModel(request.outputModel(), epoch);
        if (store.exists(name)) {
            LOG.log(System.Logger.Level.INFO, "{0} exists already; not published again", name);
            return;
        }
        publish(name);
    }

    /** The epoch's order of the pairs: shuffled from the seed and the epoch alone, so a resumed run sees the same. */
    private List<PreferencePair> epochOrder(int epoch) {
        List<PreferencePair> order = new ArrayList<>(dataset.pairs());
        if (request.shuffle()) {
            Collections.shuffle(order, new Random(request.seed() * 1_000_003L + epoch));
        }
        return order;
    }

    /** adapter/ (PEFT), projector.safetensors, expo-model.json and the tokenizer files, staged then renamed. */
    private void publish(String name) {
        Path staging = store.newStagingDir(name);
        try {
            Path adapterDir = Files.createDirectories(staging.resolve("adapter"));
            SafetensorsWriter.write(adapterDir.resolve("adapter_model.safetensors"),
                    TrainableParameters.adapterTensors(master, shapes));
            lora.write(adapterDir);
            TrainableParameters.writeProjector(staging.resolve("projector.safetensors"), master, shapes);
            new MultimodalManifest(request.languageModel(), request.visionTower(), "projector.safetensors", "adapter",
                    request.visionLayer(), true).write(staging);
            Path lmDir = store.existing("language_model", request.languageModel());
            for (String file : TOKENIZER_FILES) {
                if (Files.isRegularFile(lmDir.resolve(file))) {
                    Files.copy(lmDir.resolve(file), staging.resolve(file));
                }
            }
            ModelStore.fsyncTree(staging);
            store.publish(staging, name, false);
        } catch (IOException e) {
            ModelStore.deleteTree(staging);
            throw new UncheckedIOException("cannot write model " + name, e);
        } catch (RuntimeException e) {
            ModelStore.deleteTree(staging);
            throw e;
        }
    }

    /** The trainable tensors' current values (for tests and checkpoints). */
    public Map<String, float[]> parameters() {
        return master;
    }

    @Override
    public void close() {
        manager.close();
    }
}

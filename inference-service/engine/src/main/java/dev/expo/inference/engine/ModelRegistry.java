package dev.expo.inference.engine;

import ai.djl.ndarray.NDManager;
import dev.expo.checkpoint.Checkpoint;
import dev.expo.checkpoint.DType;
import dev.expo.checkpoint.HfConfig;
import dev.expo.checkpoint.catalog.ModelCatalog;
import dev.expo.checkpoint.catalog.ModelDescription;
import dev.expo.checkpoint.catalog.ModelKind;
import dev.expo.common.ExpoException;
import dev.expo.common.store.ModelStore;
import dev.expo.modeling.Decoder;
import dev.expo.modeling.DjlDecoder;
import dev.expo.modeling.ModelOptions;
import dev.expo.modeling.cpu.CpuDecoder;
import dev.expo.modeling.clip.ClipVisionModel;
import dev.expo.modeling.llama.LlamaConfig;
import dev.expo.modeling.llama.LlamaModel;
import dev.expo.modeling.lora.LoraAdapter;
import dev.expo.modeling.multimodal.MultimodalManifest;
import dev.expo.modeling.multimodal.MultimodalModel;
import dev.expo.modeling.multimodal.Projector;
import dev.expo.modeling.tokenizer.TextTokenizer;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;
import java.util.function.Predicate;
import java.util.function.Supplier;

/**
 * The models in memory, loaded from the store on first use and kept until unloaded. A multimodal manifest's parts
 * are loaded (and shared) as models of their own: one copy of a language model serves it alone, inside every
 * manifest, and under every adapter.
 */
public final class ModelRegistry implements AutoCloseable {

    private final ModelStore store;
    private final ModelCatalog catalog;
    private final NDManager manager;
    private final ModelOptions options;
    private final Map<String, LoadedModel> loaded = new LinkedHashMap<>();
    /** Estimated bytes each loaded model holds, and when it was last asked for (least recently used goes first). */
    private final Map<String, Long> bytes = new LinkedHashMap<>();
    private final Map<String, Long> lastUsed = new LinkedHashMap<>();
    private final long budgetBytes;
    private Predicate<LoadedModel> inUse = model -> false;
    private Consumer<LoadedModel> onUnload = model -> { };
    private long clock;
    /** Models some thread is working with right now (see {@link #pinned}): never evicted meanwhile. */
    private final Map<String, Integer> pins = new HashMap<>();
    private final ThreadLocal<List<String>> pinScope = new ThreadLocal<>();
    /** Projectors are not models of the store's own (they may live inside a manifest folder): keyed by path. */
    private final Map<Path, Projector> projectors = new LinkedHashMap<>();

    public ModelRegistry(ModelStore store, ModelOptions options) {
        this(store, options, Long.MAX_VALUE);
    }

    /**
     * @param budgetBytes the most the loaded models' weights may take; loading past it first unloads the least
     *                    recently used models that nothing is using
     */
    public ModelRegistry(ModelStore store, ModelOptions options, long budgetBytes) {
        this.store = store;
        this.catalog = new ModelCatalog(store);
        this.options = options;
        this.budgetBytes = budgetBytes;
        this.manager = NDManager.newBaseManager(options.device());
    }

    /** Tells the registry which models are busy (running generations): those are never evicted. */
    public synchronized void setInUse(Predicate<LoadedModel> inUse) {
        this.inUse = inUse;
    }

    /** Told of every model that leaves memory, unloaded or evicted (after it has left). */
    public synchronized void setOnUnload(Consumer<LoadedModel> onUnload) {
        this.onUnload = onUnload;
    }

    /**
     * Runs work during which every model it gets from this registry stays loaded: a request resolving its model, its
     * adapter and a manifest's parts cannot see one of them evicted by another request's load halfway through.
     */
    public <T> T pinned(Supplier<T> work) {
        if (pinScope.get() != null) {
            return work.get();
        }
        List<String> scope = new ArrayList<>();
        pinScope.set(scope);
        try {
            return work.get();
        } finally {
            pinScope.remove();
            synchronized (this) {
                for (String name : scope) {
                    pins.computeIfPresent(name, (n, count) -> count == 1 ? null : count - 1);
                }
            }
        }
    }

    public synchronized long loadedBytes() {
        return bytes.values().stream().mapToLong(Long::longValue).sum();
    }

    public ModelCatalog catalog() {
        return catalog;
    }

    public synchronized boolean isLoaded(String name) {
        return loaded.containsKey(name);
    }

    public synchronized List<String> loadedNames() {
        return new ArrayList<>(loaded.keySet());
    }

    /** The model, loading it if needed; NOT_FOUND if the store has none of that name. */
    public LoadedModel get(String name) {
        return get("model", name);
    }

    /** {@link #get(String)}, with NOT_FOUND naming the request's {@code field} ("adapter", ...). */
    private LoadedModel get(String field, String name) {
        return pinned(() -> load(field, name));
    }

    private synchronized LoadedModel load(String field, String name) {
        pinScope.get().add(name);
        pins.merge(name, 1, Integer::sum);
        lastUsed.put(name, ++clock);
        LoadedModel model = loaded.get(name);
        if (model != null) {
            return model;
        }
        ModelDescription description = catalog.describe(field, name);
        Path dir = store.existing(field, name);
        // What cannot be served is refused before anything is evicted to make room for it.
        Runnable discard = () -> { };   // what was read ahead, if the load does not happen after all
        Supplier<LoadedModel> loader = switch (description.kind()) {
            case LANGUAGE_MODEL -> {
                LanguageFiles files = readLanguage(dir);
                discard = files.tokenizer()::close;
                yield () -> loadLanguage(name, dir, files);
            }
            case REWARD_MODEL -> {
                LanguageFiles files = readLanguage(dir);
                discard = files.tokenizer()::close;
                yield () -> loadReward(name, dir, files);
            }
            case VISION_TOWER -> () -> new LoadedModel.Vision(name, ClipVisionModel.load(dir, manager, options));
            case MULTIMODAL -> () -> loadMultimodal(name, dir);
            case ADAPTER -> () -> new LoadedModel.Adapter(name, LoraAdapter.load(dir, manager, options));
            case PROJECTOR -> throw ExpoException.failedPrecondition("model \"" + name + "\" is a projector ("
                    + description.architecture() + "), which this service serves only inside a multimodal manifest");
            case UNKNOWN -> throw catalog.whyUnknown(name);
        };
        long needed = estimate(description);
        try {
            makeRoom(name, needed);
            model = loader.get();
        } catch (RuntimeException | Error e) {
            discard.run();
            throw e;
        }
        loaded.put(name, model);
        bytes.put(name, needed);
        lastUsed.put(name, ++clock);
        return model;
    }

    /**
     * The memory a model takes once loaded: its weight files, twice for BF16/F16 weights held in FP32 (DJL); the
     * CPU decoder keeps BF16 as it is; a manifest only its projector.
     */
    private long estimate(ModelDescription description) {
        boolean widened = description.dtype() != null && description.dtype().byteSize() == 2;
        return switch (description.kind()) {
            // The CPU decoder keeps BF16 as stored and widens F16; DJL on a GPU holds FP16.
            case LANGUAGE_MODEL, REWARD_MODEL -> !options.device().isGpu() && description.dtype() == DType.F16
                    ? 2 * description.sizeBytes() : description.sizeBytes();
            case VISION_TOWER, ADAPTER -> widened ? 2 * description.sizeBytes() : description.sizeBytes();
            default -> description.sizeBytes();
        };
    }

    /** Unloads least recently used models nothing is using until {@code needed} more bytes fit the budget. */
    private void makeRoom(String name, long needed) {
        while (loadedBytes() + needed > budgetBytes) {
            String victim = null;
            for (String candidate : loaded.keySet()) {
                LoadedModel model = loaded.get(candidate);
                if (pins.containsKey(candidate) || inUse.test(model) || isPartOfLoadedManifest(model)) {
                    continue;
                }
                if (victim == null || lastUsed.getOrDefault(candidate, 0L) < lastUsed.getOrDefault(victim, 0L)) {
                    victim = candidate;
                }
            }
            if (victim == null) {
                throw ExpoException.resourceExhausted("model \"" + name + "\" needs about " + (needed >> 20)
                        + " MiB but " + (loadedBytes() >> 20) + " MiB of the " + (budgetBytes >> 20)
                        + " MiB budget are models in use; retry when they are free");
            }
            remove(victim);
        }
    }

    private boolean isPartOfLoadedManifest(LoadedModel part) {
        for (LoadedModel other : loaded.values()) {
            if (other != part && other instanceof LoadedModel.Multimodal mm && uses(mm, part)) {
                return true;
            }
        }
        return false;
    }

    public LoadedModel.Language language(String field, String name) {
        LoadedModel model = get(name);
        if (model instanceof LoadedModel.Language language) {
            return language;
        }
        throw ExpoException.invalidArgument(field, name, "is a " + kind(model) + ", not a language model");
    }

    public LoadedModel.Adapter adapter(String name) {
        LoadedModel model = get("adapter", name);
        if (model instanceof LoadedModel.Adapter adapter) {
            return adapter;
        }
        throw ExpoException.invalidArgument("adapter", name, "is a " + kind(model) + ", not a LoRA adapter");
    }

    /**
     * Unloads a model; FAILED_PRECONDITION while it generates or is part of a loaded multimodal model (which goes
     * first).
     */
    public synchronized boolean unload(String name) {
        LoadedModel model = loaded.get(name);
        if (model == null) {
            return false;
        }
        for (LoadedModel other : loaded.values()) {
            if (other != model && other instanceof LoadedModel.Multimodal mm && uses(mm, model)) {
                throw ExpoException.failedPrecondition("model \"" + name + "\" is part of the loaded multimodal "
                        + "model \"" + mm.name() + "\"; unload that first");
            }
        }
        if (pins.containsKey(name) || inUse.test(model)) {
            throw ExpoException.failedPrecondition("model \"" + name + "\" is in use by running requests; unload "
                    + "it when they are done");
        }
        remove(name);
        return true;
    }

    private void remove(String name) {
        LoadedModel model = loaded.remove(name);
        bytes.remove(name);
        lastUsed.remove(name);
        switch (model) {
            case LoadedModel.Language language -> {
                language.decoder().close();
                language.tokenizer().close();
            }
            case LoadedModel.Reward reward -> {
                reward.decoder().close();
                reward.tokenizer().close();
            }
            case LoadedModel.Vision vision -> vision.tower().close();
            case LoadedModel.Adapter adapter -> adapter.adapter().close();
            case LoadedModel.Multimodal multimodal -> {
                // Parts are models of their own (or the projector, owned here and kept for reuse).
            }
        }
        onUnload.accept(model);
    }

    private static boolean uses(LoadedModel.Multimodal mm, LoadedModel part) {
        return switch (part) {
            case LoadedModel.Language l -> mm.decoder() == l.decoder();
            case LoadedModel.Vision v -> mm.model().visionTower() == v.tower();
            case LoadedModel.Adapter a -> mm.model().adapter() == a.adapter();
            case LoadedModel.Multimodal m -> false;
            case LoadedModel.Reward r -> false;
        };
    }

    /** A language model's small files, read (and so checked) before its weights. */
    private record LanguageFiles(TextTokenizer tokenizer, GenerationDefaults generation) {
    }

    /**
     * Everything that can refuse a language model short of loading its weights: its config, its weights' shapes and
     * dtypes (headers only), its generation config and its tokenizer. Read before anything is evicted to make room
     * for it; the tokenizer and generation config are then used as read.
     */
    private static LanguageFiles readLanguage(Path dir) {
        LlamaConfig config = LlamaConfig.from(HfConfig.read(dir));
        try (Checkpoint weights = Checkpoint.open(dir)) {
            config.requireWeights(weights);
        }
        GenerationDefaults generation = GenerationDefaults.read(dir);
        return new LanguageFiles(TextTokenizer.load(dir), generation);
    }

    private LoadedModel.Language loadLanguage(String name, Path dir, LanguageFiles files) {
        Decoder decoder = options.device().isGpu() ? new DjlDecoder(LlamaModel.load(dir, manager, options))
                : CpuDecoder.load(dir, options.kvCacheDtype(), options.cpuKernels());
        return new LoadedModel.Language(name, decoder, files.tokenizer(),
                eosIds(decoder.config(), files.generation(), files.tokenizer()), files.generation());
    }

    private LoadedModel.Reward loadReward(String name, Path dir, LanguageFiles files) {
        Decoder decoder = options.device().isGpu() ? new DjlDecoder(LlamaModel.load(dir, manager, options))
                : CpuDecoder.load(dir, options.kvCacheDtype(), options.cpuKernels());
        if (decoder.config().numLabels() != 1) {
            decoder.close();
            throw ExpoException.failedPrecondition("model \"" + name + "\" is a sequence classifier with "
                    + decoder.config().numLabels() + " labels; a reward model has one (num_labels 1)");
        }
        return new LoadedModel.Reward(name, decoder, files.tokenizer(), decoder.config().padTokenId());
    }

    private LoadedModel.Multimodal loadMultimodal(String name, Path dir) {
        MultimodalManifest manifest = MultimodalManifest.read(dir);
        LoadedModel.Language language = language("language_model", partName(dir, manifest.languageModel()));
        LoadedModel vision = get(partName(dir, manifest.visionTower()));
        if (!(vision instanceof LoadedModel.Vision tower)) {
            throw ExpoException.failedPrecondition(dir + ": vision_tower \"" + manifest.visionTower() + "\" is a "
                    + kind(vision) + ", not a vision tower");
        }
        Path projectorPath = MultimodalManifest.local(dir, manifest.projector());
        if (projectorPath == null) {
            projectorPath = store.existing("projector", manifest.projector());
        }
        Projector projector = projectors.computeIfAbsent(projectorPath, p -> Projector.load(p, manager, options));
        LoraAdapter adapter = null;
        if (manifest.adapter() != null) {
            Path local = MultimodalManifest.local(dir, manifest.adapter());
            if (local != null) {
                String key = name + "/" + manifest.adapter();
                LoadedModel cached = loaded.get(key);
                adapter = cached instanceof LoadedModel.Adapter a ? a.adapter()
                        : ((LoadedModel.Adapter) put(new LoadedModel.Adapter(key, LoraAdapter.load(local, manager,
                                options)))).adapter();
            } else {
                adapter = adapter(manifest.adapter()).adapter();
            }
        }
        if (adapter != null) {
            adapter.checkFits(language.decoder().config(), manifest.adapter());
        }
        MultimodalModel model = new MultimodalModel(tower.tower(), projector, adapter, manifest.visionLayer(),
                manifest.dropClassToken(), language.decoder().config().hiddenSize());
        return new LoadedModel.Multimodal(name, language.name(), model, language.decoder(), language.tokenizer(),
                language.eosTokenIds(), language.generation());
    }

    private LoadedModel put(LoadedModel model) {
        loaded.put(model.name(), model);
        return model;
    }

    /** A manifest's part names a model of the store (a folder inside the manifest is not a store model). */
    private String partName(Path manifestDir, String reference) {
        ModelStore.checkName("manifest part", reference);
        if (!store.exists(reference)) {
            throw ExpoException.failedPrecondition(manifestDir + " refers to \"" + reference + "\", which is not in "
                    + "the model store");
        }
        return reference;
    }

    /** End of sequence: config.json's, generation_config.json's and the tokenizer's eos ids, together. */
    private static Set<Integer> eosIds(LlamaConfig config, GenerationDefaults generation, TextTokenizer tokenizer) {
        Set<Integer> ids = new LinkedHashSet<>(config.eosTokenIds());
        ids.addAll(generation.eosTokenIds());
        if (tokenizer.eosTokenId() >= 0) {
            ids.add(tokenizer.eosTokenId());
        }
        return Set.copyOf(ids);
    }

    private static String kind(LoadedModel model) {
        return switch (model) {
            case LoadedModel.Language l -> "language model";
            case LoadedModel.Reward r -> "reward model";
            case LoadedModel.Vision v -> "vision tower";
            case LoadedModel.Multimodal m -> "multimodal model";
            case LoadedModel.Adapter a -> "LoRA adapter";
        };
    }

    public ModelKind kindOf(String name) {
        return catalog.describe(name).kind();
    }

    @Override
    public synchronized void close() {
        for (String name : new ArrayList<>(loaded.keySet()).reversed()) {
            try {
                LoadedModel model = loaded.get(name);
                if (model instanceof LoadedModel.Multimodal) {
                    loaded.remove(name);
                } else {
                    remove(name);
                }
            } catch (RuntimeException e) {
                // Closing anyway.
            }
        }
        projectors.values().forEach(Projector::close);
        manager.close();
    }
}

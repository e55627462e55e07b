package dev.expo.extrapolation.engine;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.expo.checkpoint.DType;
import dev.expo.checkpoint.HfConfig;
import dev.expo.checkpoint.SafetensorsLayout;
import dev.expo.checkpoint.SafetensorsWriter;
import dev.expo.checkpoint.ShardPlan;
import dev.expo.checkpoint.TensorInfo;
import dev.expo.common.ExpoException;
import dev.expo.common.store.ModelStore;
import dev.expo.extrapolation.engine.ExtrapolationProgress.Phase;
import dev.expo.extrapolation.engine.kernel.ExtrapolationKernel;
import dev.expo.extrapolation.engine.kernel.NonFiniteCount;
import dev.expo.extrapolation.engine.kernel.ScalarKernel;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BooleanSupplier;
import java.util.regex.Pattern;

/**
 * Runs a plan: streams both inputs (memory-mapped) through the kernel in bounded chunks on several threads,
 * writes each chunk straight to its place in the output shards, and publishes the model only once every byte is
 * on disk. Peak memory is one chunk buffer per worker, whatever the model's size.
 *
 * <p>The output is written to a staging folder in the store; on failure or cancellation it is deleted, so nothing
 * half-written is ever visible under the output name.
 */
public final class Extrapolator {

    /**
     * @param workers        threads computing chunks
     * @param chunkElements  elements per chunk (the buffer per worker is this times the output dtype's size)
     * @param syncEveryBytes start writing back a shard's dirty pages every this many bytes, so the final fsync is
     *                       short and disk I/O overlaps the computation
     */
    public record Settings(int workers, int chunkElements, long syncEveryBytes) {
        public Settings {
            if (workers < 1 || chunkElements < 1024 || syncEveryBytes < 1) {
                throw new IllegalArgumentException("invalid settings: " + workers + ", " + chunkElements + ", "
                        + syncEveryBytes);
            }
        }

        public static Settings defaults() {
            return new Settings(Runtime.getRuntime().availableProcessors(), 1 << 21, 256L << 20);
        }
    }

    /** Files of the aligned model that are weights (not copied) or would mislead (its model card). */
    private static final Pattern NOT_COPIED = Pattern.compile(
            ".*\\.(safetensors|bin|pt|pth|ckpt|h5|msgpack|gguf|onnx)|.*\\.index\\.json|README\\.md|\\..*");
    public static final String PROVENANCE_FILE = "extrapolation.json";
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
    private static final long PROGRESS_INTERVAL_MS = 200;

    private final ModelStore store;
    private final ExtrapolationKernel kernel;
    private final Settings settings;

    public Extrapolator(ModelStore store, ExtrapolationKernel kernel, Settings settings) {
        this.store = store;
        this.kernel = kernel;
        this.settings = settings;
    }

    /** Refuses an output name that exists (unless overwriting) or that names one of the inputs. */
    public void checkOutput(ExtrapolationSpec spec, String outputModel, boolean overwrite) {
        ModelStore.checkName("output_model", outputModel);
        if (outputModel.equals(spec.baseModel()) || outputModel.equals(spec.alignedModel())) {
            throw ExpoException.invalidArgument("output_model", outputModel, "must differ from the base and the "
                    + "aligned model, which are read while it is written");
        }
        if (!overwrite && store.exists(outputModel)) {
            throw new ExpoException(ExpoException.Kind.ALREADY_EXISTS, "model \"" + outputModel + "\" already "
                    + "exists in the store; choose another --output or pass --overwrite");
        }
    }

    public ExtrapolationResult run(ExtrapolationPlan plan, String outputModel, boolean overwrite,
                                   java.util.function.Consumer<ExtrapolationProgress> progress,
                                   BooleanSupplier cancelled) {
        checkOutput(plan.spec(), outputModel, overwrite);
        Instant start = Instant.now();
        Path staging = store.newStagingDir(outputModel);
        try {
            // The small files first: their write-back then rides along with the weights'.
            plan.output().writeIndex(staging);
            copyModelFiles(plan, staging);
            writeProvenance(plan, outputModel, staging, start);
            Run run = new Run(plan, staging, progress, cancelled, start);
            Map<String, NonFiniteCount> nonFinite = run.writeWeights();
            checkCancelled(cancelled);
            progress.accept(run.snapshot(Phase.PUBLISHING));
            ModelStore.fsyncTree(staging);
            checkCancelled(cancelled);
            store.publish(staging, outputModel, overwrite);
            Duration duration = Duration.between(start, Instant.now());
            progress.accept(run.snapshot(Phase.DONE));
            List<ExtrapolationResult.NonFiniteTensor> bad = new ArrayList<>();
            nonFinite.forEach((name, count) -> {
                if (count.any()) {
                    bad.add(new ExtrapolationResult.NonFiniteTensor(name, count.nan(), count.inf()));
                }
            });
            return new ExtrapolationResult(outputModel, plan.tensors().size(), plan.outputBytes(),
                    plan.output().shards().size(), plan.outputDtype(), duration, plan.inputBytes(), bad);
        } catch (IOException e) {
            ModelStore.deleteTree(staging);
            throw new UncheckedIOException("writing " + outputModel + " failed: " + e.getMessage(), e);
        } catch (RuntimeException | Error e) {
            ModelStore.deleteTree(staging);
            throw e;
        }
    }

    private static void checkCancelled(BooleanSupplier cancelled) {
        if (cancelled.getAsBoolean()) {
            throw new CancellationException("extrapolation cancelled");
        }
    }

    /** One chunk of one tensor: elements [start, start + count). */
    private record Chunk(int shard, PlannedTensor tensor, long start, int count, long position) {
    }

    /** The state of one execution: output channels, the work list, counters. */
    private final class Run {
        private final ExtrapolationPlan plan;
        private final Path staging;
        private final java.util.function.Consumer<ExtrapolationProgress> progress;
        private final BooleanSupplier cancelled;
        private final Instant start;
        private final AtomicLong bytesDone = new AtomicLong();
        private final AtomicInteger tensorsDone = new AtomicInteger();
        private final Map<String, AtomicInteger> chunksLeft = new HashMap<>();
        private final Map<String, NonFiniteCount> nonFinite = new LinkedHashMap<>();
        private volatile Instant writingSince;

        Run(ExtrapolationPlan plan, Path staging, java.util.function.Consumer<ExtrapolationProgress> progress,
            BooleanSupplier cancelled, Instant start) {
            this.plan = plan;
            this.staging = staging;
            this.progress = progress;
            this.cancelled = cancelled;
            this.start = start;
        }

        Map<String, NonFiniteCount> writeWeights() throws IOException {
            List<ShardPlan.Shard> shards = plan.output().shards();
            List<FileChannel> channels = new ArrayList<>();
            ScheduledExecutorService reporter = Executors.newSingleThreadScheduledExecutor(
                    r -> daemon(r, "extrapolation-progress"));
            ExecutorService syncer = Executors.newSingleThreadExecutor(r -> daemon(r, "extrapolation-sync"));
            ExecutorService workers = Executors.newFixedThreadPool(settings.workers(),
                    r -> daemon(r, "extrapolation-worker"));
            try {
                for (ShardPlan.Shard shard : shards) {
                    FileChannel channel = FileChannel.open(staging.resolve(shard.fileName()),
                            StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE, StandardOpenOption.READ);
                    channels.add(channel);
                    SafetensorsWriter.writeFully(channel, shard.layout().header(), 0);
                }
                List<Chunk> chunks = chunks(shards);
                for (PlannedTensor tensor : plan.tensors()) {
                    nonFinite.put(tensor.name(), new NonFiniteCount());
                }
                writingSince = Instant.now();
                progress.accept(snapshot(Phase.WRITING));
                reporter.scheduleAtFixedRate(() -> progress.accept(snapshot(Phase.WRITING)), PROGRESS_INTERVAL_MS,
                        PROGRESS_INTERVAL_MS, TimeUnit.MILLISECONDS);
                SyncBehind syncBehind = new SyncBehind(channels, syncer);
                AtomicInteger next = new AtomicInteger();
                Thread prefetcher = Thread.ofPlatform().daemon().name("extrapolation-prefetch")
                        .start(() -> prefetch(chunks, next));
                List<Future<?>> running = new ArrayList<>();
                for (int w = 0; w < settings.workers(); w++) {
                    running.add(workers.submit(() -> {
                        work(chunks, next, channels, syncBehind);
                        return null;
                    }));
                }
                awaitAll(running);
                prefetcher.interrupt();
                checkCancelled(cancelled);
                syncer.shutdown();
                syncer.awaitTermination(1, TimeUnit.DAYS);
                return nonFinite;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new CancellationException("interrupted");
            } finally {
                workers.shutdownNow();
                reporter.shutdownNow();
                syncer.shutdownNow();
                for (FileChannel channel : channels) {
                    channel.close();
                }
            }
        }

        private List<Chunk> chunks(List<ShardPlan.Shard> shards) {
            Map<String, PlannedTensor> byName = new HashMap<>();
            plan.tensors().forEach(t -> byName.put(t.name(), t));
            List<Chunk> chunks = new ArrayList<>();
            for (int s = 0; s < shards.size(); s++) {
                SafetensorsLayout layout = shards.get(s).layout();
                for (TensorInfo info : layout.tensors()) {
                    PlannedTensor tensor = byName.get(info.name());
                    long elements = tensor.elementCount();
                    int count = 0;
                    for (long first = 0; first < elements; first += settings.chunkElements()) {
                        int n = (int) Math.min(settings.chunkElements(), elements - first);
                        long position = layout.position(info.name()) + first * tensor.outputDtype().byteSize();
                        chunks.add(new Chunk(s, tensor, first, n, position));
                        count++;
                    }
                    if (count == 0) {
                        tensorsDone.incrementAndGet();   // an empty tensor has nothing to compute
                    }
                    chunksLeft.put(info.name(), new AtomicInteger(count));
                }
            }
            return chunks;
        }

        private void work(List<Chunk> chunks, AtomicInteger next, List<FileChannel> channels, SyncBehind syncBehind)
                throws IOException {
            long bufferBytes = (long) settings.chunkElements() * 4;
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment buffer = arena.allocate(bufferBytes, 64);
                NonFiniteCount counts = new NonFiniteCount();
                for (int i = next.getAndIncrement(); i < chunks.size(); i = next.getAndIncrement()) {
                    if (cancelled.getAsBoolean()) {
                        return;
                    }
                    Chunk chunk = chunks.get(i);
                    PlannedTensor tensor = chunk.tensor();
                    DType in = tensor.aligned().dtype();
                    DType out = tensor.outputDtype();
                    MemorySegment aligned = slice(plan.aligned().tensor(tensor.name()).bytes(), chunk, in);
                    MemorySegment output = buffer.asSlice(0, (long) chunk.count() * out.byteSize());
                    counts = new NonFiniteCount();
                    if (tensor.copiesAligned()) {
                        if (in == out) {
                            MemorySegment.copy(aligned, 0, output, 0, output.byteSize());
                        } else {
                            ScalarKernel.convert(aligned, in, output, out, chunk.count(), counts);
                        }
                        bytesDone.addAndGet(aligned.byteSize());
                    } else {
                        MemorySegment base = slice(plan.base().tensor(tensor.name()).bytes(), chunk, in);
                        kernel.extrapolate(aligned, base, in, output, out, chunk.count(), (float) tensor.alpha(),
                                counts);
                        bytesDone.addAndGet(aligned.byteSize() * 2);
                    }
                    SafetensorsWriter.writeFully(channels.get(chunk.shard()), output.asByteBuffer(),
                            chunk.position());
                    syncBehind.wrote(chunk.shard(), output.byteSize());
                    if (counts.any()) {
                        NonFiniteCount total = nonFinite.get(tensor.name());
                        synchronized (total) {
                            total.add(counts);
                        }
                    }
                    if (chunksLeft.get(tensor.name()).decrementAndGet() == 0) {
                        tensorsDone.incrementAndGet();
                    }
                }
            }
        }

        /**
         * Pages the next chunks of both inputs in ahead of the workers: reading a mapped file by page faults alone
         * gets little read-ahead, so a cold file would be read in small random-looking pieces.
         */
        private void prefetch(List<Chunk> chunks, AtomicInteger next) {
            int lookahead = Math.max(2 * settings.workers(), 4);
            for (int j = 0; j < chunks.size() && !Thread.currentThread().isInterrupted(); j++) {
                while (j > next.get() + lookahead) {
                    if (cancelled.getAsBoolean()) {
                        return;
                    }
                    java.util.concurrent.locks.LockSupport.parkNanos(200_000);
                    if (Thread.currentThread().isInterrupted()) {
                        return;
                    }
                }
                if (j < next.get()) {
                    continue;   // the workers got there first
                }
                Chunk chunk = chunks.get(j);
                PlannedTensor tensor = chunk.tensor();
                DType in = tensor.aligned().dtype();
                slice(plan.aligned().tensor(tensor.name()).bytes(), chunk, in).load();
                if (!tensor.copiesAligned()) {
                    slice(plan.base().tensor(tensor.name()).bytes(), chunk, in).load();
                }
            }
        }

        private MemorySegment slice(MemorySegment tensorBytes, Chunk chunk, DType type) {
            return tensorBytes.asSlice(chunk.start() * type.byteSize(), (long) chunk.count() * type.byteSize());
        }

        ExtrapolationProgress snapshot(Phase phase) {
            long done = bytesDone.get();
            long total = plan.inputBytes();
            Instant now = Instant.now();
            Duration elapsed = Duration.between(start, now);
            Instant since = writingSince;
            double seconds = since == null ? 0 : Duration.between(since, now).toNanos() / 1e9;
            double rate = seconds > 0.05 ? done / seconds : 0;
            Duration eta = rate > 0 && phase == Phase.WRITING
                    ? Duration.ofMillis((long) ((total - done) / rate * 1000)) : null;
            return new ExtrapolationProgress(phase, tensorsDone.get(), plan.tensors().size(), done, total, rate,
                    elapsed, eta);
        }
    }

    /**
     * Asks the kernel to write a shard's dirty pages back once enough have accumulated, on a background thread, so
     * the disk works while the CPUs compute and the final fsync has little left to do.
     */
    private final class SyncBehind {
        private final List<FileChannel> channels;
        private final ExecutorService syncer;
        private final AtomicLong[] unsynced;
        private final boolean[] pending;

        SyncBehind(List<FileChannel> channels, ExecutorService syncer) {
            this.channels = channels;
            this.syncer = syncer;
            this.unsynced = new AtomicLong[channels.size()];
            this.pending = new boolean[channels.size()];
            for (int i = 0; i < unsynced.length; i++) {
                unsynced[i] = new AtomicLong();
            }
        }

        void wrote(int shard, long bytes) {
            if (unsynced[shard].addAndGet(bytes) < settings.syncEveryBytes()) {
                return;
            }
            synchronized (this) {
                if (pending[shard]) {
                    return;
                }
                pending[shard] = true;
                unsynced[shard].set(0);
            }
            syncer.execute(() -> {
                try {
                    channels.get(shard).force(false);
                } catch (IOException e) {
                    // The final fsync reports it.
                } finally {
                    synchronized (this) {
                        pending[shard] = false;
                    }
                }
            });
        }
    }

    private static void awaitAll(List<Future<?>> futures) throws InterruptedException, IOException {
        for (Future<?> future : futures) {
            try {
                future.get();
            } catch (ExecutionException e) {
                futures.forEach(f -> f.cancel(true));
                Throwable cause = e.getCause();
                if (cause instanceof IOException io) {
                    throw io;
                }
                if (cause instanceof RuntimeException runtime) {
                    throw runtime;
                }
                throw new IllegalStateException(cause);
            }
        }
    }

    private static Thread daemon(Runnable runnable, String name) {
        Thread thread = new Thread(runnable, name);
        thread.setDaemon(true);
        return thread;
    }

    /** config.json (with torch_dtype updated if the dtype changed), generation config, tokenizer, chat template. */
    private static void copyModelFiles(ExtrapolationPlan plan, Path staging) throws IOException {
        Path alignedDir = plan.aligned().directory();
        try (DirectoryStream<Path> files = Files.newDirectoryStream(alignedDir)) {
            for (Path file : files) {
                String name = file.getFileName().toString();
                if (!Files.isRegularFile(file) || NOT_COPIED.matcher(name).matches()) {
                    continue;
                }
                if (name.equals(HfConfig.FILE_NAME) && plan.outputDtype() != null) {
                    HfConfig config = HfConfig.read(alignedDir);
                    if (config.torchDtype() != plan.outputDtype()) {
                        Files.writeString(staging.resolve(name), config.withTorchDtype(plan.outputDtype()));
                        continue;
                    }
                }
                Files.copy(file, staging.resolve(name), StandardCopyOption.COPY_ATTRIBUTES);
            }
        }
    }

    /** What made this model, next to it: inputs, schedule and every alpha. */
    private static void writeProvenance(ExtrapolationPlan plan, String outputModel, Path staging, Instant start)
            throws IOException {
        Map<String, Object> provenance = new LinkedHashMap<>();
        provenance.put("formula", "theta = aligned + alpha * (aligned - base), float32, rounded to nearest even");
        provenance.put("output_model", outputModel);
        provenance.put("base_model", plan.spec().baseModel());
        provenance.put("aligned_model", plan.spec().alignedModel());
        provenance.put("num_layers", plan.numLayers());
        provenance.put("created", start.toString());
        Map<String, Double> alphas = new LinkedHashMap<>();
        plan.tensors().forEach(t -> alphas.put(t.name(), t.alpha()));
        provenance.put("alpha_per_tensor", alphas);
        JSON.writeValue(staging.resolve(PROVENANCE_FILE).toFile(), provenance);
    }
}

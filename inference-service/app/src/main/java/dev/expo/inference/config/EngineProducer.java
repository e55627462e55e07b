package dev.expo.inference.config;

import dev.expo.checkpoint.catalog.ModelCatalog;
import dev.expo.common.store.ModelStore;
import dev.expo.inference.engine.InferenceEngine;
import dev.expo.inference.engine.InferenceLimits;
import dev.expo.inference.engine.ModelRegistry;
import dev.expo.modeling.ModelOptions;
import dev.expo.modeling.cpu.MatrixKernels;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.quarkus.runtime.StartupEvent;
import jakarta.enterprise.event.Observes;
import jakarta.enterprise.inject.Disposes;
import jakarta.enterprise.inject.Produces;
import jakarta.inject.Singleton;
import org.jboss.logging.Logger;

/** Builds the inference engine's plain-Java objects from configuration. */
public class EngineProducer {

    private static final Logger LOG = Logger.getLogger(EngineProducer.class);

    @Produces
    @Singleton
    ModelCatalog modelCatalog(ModelStore store) {
        return new ModelCatalog(store);
    }

    @Produces
    @Singleton
    InferenceEngine engine(ModelStore store, InferenceConfig config, MicrometerInferenceMetrics metrics,
                           MeterRegistry registry) {
        ModelOptions options = ModelOptions.of(config.device()).withKvCache(config.kvCacheDtype())
                .withCpuKernels(cpuKernels(config.cpuKernels()));
        LOG.infof("inference engine: %s %s, KV cache %s, %d worker(s); CPU matrix products: %s", options.device(),
                options.computeType(), options.kvCacheDtype(), config.workers(), options.cpuKernels().description());
        InferenceConfig.Limits limits = config.limits();
        InferenceConfig.Batching batching = config.batching();
        InferenceEngine.Batching batches = new InferenceEngine.Batching(batching.maxBatchSize(),
                batching.maxQueued(), batching.kvCacheBytes().orElse(InferenceEngine.Batching.halfTheHeap()),
                batching.prefixCacheEntries(), batching.maxPrefillPositions());
        LOG.infof("batching: up to %d sequences per model, %d waiting, %d MiB of KV cache in all, %d parked caches "
                        + "per model for prefix reuse, %d prompt positions prefilled per step", batches.maxBatch(),
                batches.maxQueued(), batches.kvCacheBytes() >> 20, batches.prefixCacheEntries(),
                batches.maxPrefillPositions());
        InferenceEngine engine = new InferenceEngine(new ModelRegistry(store, options, config.memoryBudgetBytes()),
                new InferenceLimits(limits.maxImageBytes(), limits.maxImagePixels(), limits.maxNewTokens(),
                        config.samplingDefaults().maxNewTokens()),
                config.workers(), batches, metrics);
        // Cache pressure, as vLLM's cache usage gauge shows it: reserved against the budget.
        Gauge.builder("expo.inference.kv.cache.reserved", engine, InferenceEngine::kvCacheReservedBytes)
                .baseUnit("bytes").description("KV cache reserved by running sequences, all models")
                .register(registry);
        Gauge.builder("expo.inference.kv.cache.budget", engine, InferenceEngine::kvCacheBudgetBytes)
                .baseUnit("bytes").description("inference.batching.kv-cache-bytes").register(registry);
        Gauge.builder("expo.inference.kv.cache.parked", engine, InferenceEngine::kvCacheParkedBytes)
                .baseUnit("bytes").description("KV cache of finished sequences kept for prefix reuse, all models; "
                        + "it gives way to any sequence that needs the room").register(registry);
        return engine;
    }

    /** inference.cpu-kernels: the compiled kernels, the Java ones, or the compiled ones when they loaded. */
    static MatrixKernels cpuKernels(String choice) {
        return MatrixKernels.parse(choice, "inference.cpu-kernels");
    }

    void close(@Disposes InferenceEngine engine) {
        engine.close();
    }

    /** Loading PyTorch's native library takes a few seconds: injecting the engine here does it at start-up. */
    void onStart(@Observes StartupEvent event, InferenceEngine engine, ModelStore store) {
        LOG.infof("ready; models of %s are loaded on first use", store.root());
    }
}

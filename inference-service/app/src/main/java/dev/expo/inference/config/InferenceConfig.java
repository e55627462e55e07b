package dev.expo.inference.config;

import io.smallrye.config.ConfigMapping;
import io.smallrye.config.WithDefault;

/** {@code inference.*}: where models run, how many requests at once, limits, and sampling defaults. */
@ConfigMapping(prefix = "inference")
public interface InferenceConfig {

    /** cpu, gpu (FP16 on the first GPU), gpu-fp32, or auto (a GPU when DJL sees one). */
    @WithDefault("cpu")
    String device();

    /**
     * What the CPU decoder's KV cache holds: float32 (the computed values, matching the float32 goldens) or bfloat16
     * (half the memory per sequence and faster long-context decoding; logits move by about BF16's precision).
     */
    @WithDefault("float32")
    String kvCacheDtype();

    /**
     * What runs the CPU decoder's BF16 matrix products: auto (the compiled kernels when this build has them and the
     * CPU can run them, else Java), native (the compiled kernels, or the service does not start) or java. The
     * outputs are the same bits either way.
     */
    @WithDefault("auto")
    String cpuKernels();

    /** Threads running model work (each request runs on one; PyTorch adds its own intra-op threads). */
    @WithDefault("1")
    int workers();

    Limits limits();

    Batching batching();

    /** Continuous batching, per model. */
    interface Batching {
        /** Sequences decoded together (KV cache slots). */
        @WithDefault("16")
        int maxBatchSize();

        /** Requests waiting for a slot; beyond, RESOURCE_EXHAUSTED. */
        @WithDefault("64")
        int maxQueued();

        /** Keys and values all running sequences may hold together, in bytes; unset: half the JVM's heap. */
        java.util.OptionalLong kvCacheBytes();

        /**
         * Finished sequences' caches kept per model for requests that start the same way (prefix caching; CPU
         * decoder): they use only budget no sequence needs. 0 turns it off.
         */
        @WithDefault("64")
        int prefixCacheEntries();

        /**
         * Prompt positions prefilled between two decode steps: a longer prompt, or several arriving together, is
         * prefilled over several steps, so running streams pause for one such chunk at a time.
         */
        @WithDefault("256")
        int maxPrefillPositions();
    }

    SamplingDefaults samplingDefaults();

    /** The most the loaded models' weights may take, in bytes; past it the least recently used idle ones go. */
    @WithDefault("17179869184")
    long memoryBudgetBytes();

    interface Limits {
        @WithDefault("20971520")
        int maxImageBytes();

        @WithDefault("40000000")
        long maxImagePixels();

        @WithDefault("4096")
        int maxNewTokens();
    }

    /** Used for every sampling field a request leaves unset. */
    interface SamplingDefaults {
        @WithDefault("1.0")
        float temperature();

        @WithDefault("1.0")
        float topP();

        @WithDefault("0")
        int topK();

        @WithDefault("0")
        float minP();

        @WithDefault("1.0")
        float repetitionPenalty();

        @WithDefault("256")
        int maxNewTokens();
    }
}

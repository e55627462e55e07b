package dev.expo.extrapolation.config;

import io.smallrye.config.ConfigMapping;
import io.smallrye.config.WithDefault;

/** {@code extrapolation.*}: how the engine runs and how many jobs it takes. */
@ConfigMapping(prefix = "extrapolation")
public interface ExtrapolationConfig {

    /** Threads computing one job's chunks; 0 = one per core. */
    @WithDefault("0")
    int workers();

    /** Elements per chunk; each worker holds one chunk of output (at most 4 bytes an element). */
    @WithDefault("2097152")
    int chunkElements();

    /** Start writing a shard's data back to disk every this many bytes (overlaps I/O with compute). */
    @WithDefault("268435456")
    long syncEveryBytes();

    Limits limits();

    interface Limits {
        /** Jobs running at once. */
        @WithDefault("1")
        int maxRunning();

        /** Jobs waiting; beyond this, RESOURCE_EXHAUSTED. */
        @WithDefault("8")
        int maxQueued();

        /** Finished jobs kept for GetJob / ListJobs. */
        @WithDefault("200")
        int retained();
    }
}

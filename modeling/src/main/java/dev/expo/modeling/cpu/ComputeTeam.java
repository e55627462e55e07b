package dev.expo.modeling.cpu;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;

/**
 * The threads the CPU decoder's parallel work runs on: the calling thread plus one helper per other core. A decode
 * step is ~80 short parallel sections (four matrix products and three per-row sections per layer), each well under a
 * millisecond; a helper that went to sleep between them (as a fork-join worker does) costs a wake-up each time, a
 * large share of a section. So helpers spin for a moment after each section and only then park.
 *
 * <p>Work is handed out in chunks from a shared counter, so a core that is busy with something else (another
 * process) just takes fewer chunks. One section runs at a time; a section started from inside another runs on the
 * calling thread alone.
 */
final class ComputeTeam {

    /** One per process, sized to the machine. */
    static final ComputeTeam SHARED = new ComputeTeam(Runtime.getRuntime().availableProcessors() - 1);

    /** How long an idle helper spins before parking: longer than the gaps inside a forward pass. */
    private static final long SPIN_NANOS = 200_000;

    private record Section(Kernels.RangeBody body, int count, int chunk, AtomicInteger next, AtomicInteger done,
                           AtomicReference<Throwable> failure) {

        /** Runs chunks until none is left. */
        void work() {
            int chunks = (count + chunk - 1) / chunk;
            for (int c = next.getAndIncrement(); c < chunks; c = next.getAndIncrement()) {
                try {
                    if (failure.get() == null) {
                        body.run(c * chunk, Math.min(count, (c + 1) * chunk));
                    }
                } catch (Throwable t) {
                    failure.compareAndSet(null, t);
                } finally {
                    done.incrementAndGet();
                }
            }
        }
    }

    private final Thread[] helpers;
    private volatile Section section;
    private volatile long generation;
    private final ThreadLocal<Boolean> inside = ThreadLocal.withInitial(() -> false);

    private ComputeTeam(int helperCount) {
        helpers = new Thread[Math.max(0, helperCount)];
        for (int i = 0; i < helpers.length; i++) {
            helpers[i] = Thread.ofPlatform().daemon().name("expo-compute-" + (i + 1)).start(this::help);
        }
    }

    int threads() {
        return helpers.length + 1;
    }

    /** Runs {@code body} over [0, count) in chunks of {@code chunk} indices on the team; returns when all are done. */
    void run(int count, int chunk, Kernels.RangeBody body) {
        int chunks = (count + chunk - 1) / chunk;
        if (chunks <= 1 || helpers.length == 0 || inside.get()) {
            body.run(0, count);
            return;
        }
        synchronized (this) {
            inside.set(true);
            try {
                Section current = new Section(body, count, chunk, new AtomicInteger(), new AtomicInteger(),
                        new AtomicReference<>());
                section = current;
                generation++;
                for (Thread helper : helpers) {
                    LockSupport.unpark(helper);   // a no-op for one that is spinning, bar a spare permit
                }
                current.work();
                while (current.done().get() < chunks) {
                    Thread.onSpinWait();
                }
                section = null;
                Throwable failure = current.failure().get();
                if (failure instanceof RuntimeException runtime) {
                    throw runtime;
                } else if (failure instanceof Error error) {
                    throw error;
                } else if (failure != null) {
                    throw new IllegalStateException(failure);
                }
            } finally {
                inside.set(false);
            }
        }
    }

    private void help() {
        inside.set(true);
        long seen = 0;
        while (true) {
            long spinUntil = System.nanoTime() + SPIN_NANOS;
            while (generation == seen) {
                if (System.nanoTime() > spinUntil) {
                    // A section published after the check above comes with an unpark: park returns at once.
                    LockSupport.park(this);
                    spinUntil = System.nanoTime() + SPIN_NANOS;
                } else {
                    Thread.onSpinWait();
                }
            }
            seen = generation;
            Section current = section;
            if (current != null) {
                current.work();
            }
        }
    }
}

package dev.expo.modeling.cpu;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.util.Locale;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * Off-heap memory for a model's weights, in 2 MiB pages where Linux has transparent huge pages in its usual
 * "madvise" mode: an anonymous mapping, 2 MiB-aligned, marked {@code MADV_HUGEPAGE} before it is first touched.
 * A decode step streams every weight once; with 4 KiB pages that is a TLB miss (and a hardware prefetcher stopping
 * at a page edge) every 4 KiB. PyTorch's CPU allocator does the same for large tensors.
 *
 * <p>Anywhere else (another OS, a failed call, a small model) it is plain {@link Arena#allocate}. Needs native access
 * for the unnamed module ({@code --enable-native-access=ALL-UNNAMED}, which the launch scripts pass); without it the
 * JVM prints a warning and it still works.
 */
final class HugePages {

    private static final long PAGE = 2L << 20;
    private static final int PROT_READ_WRITE = 0x1 | 0x2;
    private static final int MAP_PRIVATE_ANONYMOUS = 0x02 | 0x20;
    private static final int MADV_HUGEPAGE = 14;
    private static final MethodHandle MMAP;
    private static final MethodHandle MADVISE;
    private static final MethodHandle MUNMAP;

    static {
        MethodHandle mmap = null;
        MethodHandle madvise = null;
        MethodHandle munmap = null;
        if (System.getProperty("os.name", "").toLowerCase(Locale.ROOT).startsWith("linux")) {
            try {
                Linker linker = Linker.nativeLinker();
                mmap = linker.downcallHandle(linker.defaultLookup().find("mmap").orElseThrow(),
                        FunctionDescriptor.of(ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG));
                madvise = linker.downcallHandle(linker.defaultLookup().find("madvise").orElseThrow(),
                        FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT));
                munmap = linker.downcallHandle(linker.defaultLookup().find("munmap").orElseThrow(),
                        FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG));
            } catch (RuntimeException | Error e) {
                mmap = null;   // no native access here: plain allocations
            }
        }
        MMAP = mmap;
        MADVISE = madvise;
        MUNMAP = munmap;
    }

    private HugePages() {
    }

    /**
     * {@code bytes} of zeroed memory, 64-byte aligned at least, freed when {@code arena} closes. Below a few huge
     * pages the rounding would waste more than it saves: plain memory then.
     */
    static MemorySegment allocate(Arena arena, long bytes) {
        if (MMAP == null || bytes < 4 * PAGE) {
            return arena.allocate(bytes, 64);
        }
        // One extra page so that a 2 MiB-aligned start fits; the unused head and tail are never touched.
        long length = (bytes + PAGE - 1) / PAGE * PAGE + PAGE;
        try {
            MemorySegment mapping = (MemorySegment) MMAP.invokeExact(MemorySegment.NULL, length, PROT_READ_WRITE,
                    MAP_PRIVATE_ANONYMOUS, -1, 0L);
            long start = mapping.address();
            if (start == -1L) {
                return arena.allocate(bytes, 64);
            }
            long aligned = (start + PAGE - 1) / PAGE * PAGE;
            int ignored = (int) MADVISE.invokeExact(MemorySegment.ofAddress(aligned), length - (aligned - start),
                    MADV_HUGEPAGE);   // a refusal just leaves 4 KiB pages
            return MemorySegment.ofAddress(aligned).reinterpret(bytes, arena, segment -> unmap(start, length));
        } catch (Throwable t) {
            return arena.allocate(bytes, 64);
        }
    }

    private static void unmap(long start, long length) {
        try {
            int ignored = (int) MUNMAP.invokeExact(MemorySegment.ofAddress(start), length);
        } catch (Throwable t) {
            throw new IllegalStateException("munmap failed", t);
        }
    }
}

package dev.expo.extrapolation.engine.jobs;

import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import dev.expo.common.store.AtomicFile;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * The jobs that have not finished, on disk: one small file per job, written when it is submitted and removed when it
 * ends. Jobs live in memory, so a process killed mid-job would otherwise leave no trace of them; after a restart the
 * entries still here are the jobs it was running or holding, which the service then reports as failed. The order is
 * kept as the caller encodes it (the service keeps its request message), so a restored job shows what was asked.
 */
public final class JobJournal {

    /** A job that was open when its process stopped. */
    public record Entry(String id, Instant created, byte[] order) {
    }

    private static final int VERSION = 1;
    private final Path dir;

    /** A journal in {@code dir} (created when first written); null keeps none. */
    public JobJournal(Path dir) {
        this.dir = dir;
    }

    /** No journal: jobs are forgotten with the process. */
    public static JobJournal none() {
        return new JobJournal(null);
    }

    void opened(String id, Instant created, byte[] order) {
        if (dir == null) {
            return;
        }
        try {
            Files.createDirectories(dir);
            ByteArrayOutputStream bytes = new ByteArrayOutputStream();
            try (DataOutputStream out = new DataOutputStream(bytes)) {
                out.writeInt(VERSION);
                out.writeLong(created.toEpochMilli());
                out.writeInt(order.length);
                out.write(order);
            }
            AtomicFile.replace(dir.resolve(id + ".job"), bytes.toByteArray());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot record job " + id + " in " + dir, e);
        }
    }

    void closed(String id) {
        if (dir == null) {
            return;
        }
        try {
            Files.deleteIfExists(dir.resolve(id + ".job"));
        } catch (IOException e) {
            // Left behind, it is reported as interrupted at the next start: harmless.
        }
    }

    /** The entries left by an earlier process, oldest first; unreadable ones (a torn write) are dropped. */
    List<Entry> leftOver() {
        List<Entry> entries = new ArrayList<>();
        if (dir == null || !Files.isDirectory(dir)) {
            return entries;
        }
        try (Stream<Path> files = Files.list(dir)) {
            for (Path file : files.toList()) {
                String name = file.getFileName().toString();
                if (name.startsWith(".tmp-") || name.endsWith(".tmp")) {   // a write cut short
                    Files.deleteIfExists(file);
                    continue;
                }
                if (!name.endsWith(".job")) {
                    continue;
                }
                try (DataInputStream in = new DataInputStream(Files.newInputStream(file))) {
                    if (in.readInt() != VERSION) {
                        continue;
                    }
                    Instant created = Instant.ofEpochMilli(in.readLong());
                    byte[] order = in.readNBytes(in.readInt());
                    entries.add(new Entry(name.substring(0, name.length() - ".job".length()), created, order));
                } catch (IOException | RuntimeException torn) {
                    Files.deleteIfExists(file);
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read the job journal in " + dir, e);
        }
        entries.sort(java.util.Comparator.comparing(Entry::created));
        return entries;
    }
}

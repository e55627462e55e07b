package dev.expo.common.store;

import dev.expo.common.ExpoException;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.channels.FileChannel;
import java.nio.file.DirectoryStream;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.UUID;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * The directory that holds every model, named by its folder: {@code zephyr-7b-sft-full} or, Hugging Face style,
 * {@code chujiezheng/zephyr_0.05}. A name is one or two segments of letters, digits, '.', '_', '+' and '-' that do
 * not start with a dot, so no name can reach outside the store. (A folder the operator symlinked into the store is
 * followed: that is how real checkpoints are usually added.)
 *
 * <p>New models are written under {@code .staging/} inside the store and moved into place with a rename on the same
 * file system, so a half-written model is never visible under its name.
 */
public final class ModelStore {

    private static final Pattern SEGMENT = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._+-]{0,127}");
    private static final String STAGING = ".staging";
    private static final String OWNER_END = "-w-";
    private static final Pattern STAGING_OWNER = Pattern.compile(".*-(\\d+)" + OWNER_END + "[0-9a-f-]{36}");
    /** Files whose presence makes a folder a model. */
    private static final List<String> MODEL_MARKERS = List.of(
            "config.json", "adapter_config.json", "expo-model.json", "model.safetensors",
            "model.safetensors.index.json");

    private final Path root;

    public ModelStore(Path root) {
        this.root = root.toAbsolutePath().normalize();
        try {
            Files.createDirectories(this.root);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create the model store at " + this.root, e);
        }
    }

    public Path root() {
        return root;
    }

    /** Checks that {@code name} is a valid model name; {@code field} names the request field in the error. */
    public static String checkName(String field, String name) {
        if (name == null || name.isEmpty()) {
            throw ExpoException.invalidArgument(field, "", "a model name is required");
        }
        String[] segments = name.split("/", -1);
        if (segments.length > 2) {
            throw ExpoException.invalidArgument(field, name, "a model name has at most two segments (owner/name)");
        }
        for (String segment : segments) {
            if (!SEGMENT.matcher(segment).matches()) {
                throw ExpoException.invalidArgument(field, name,
                        "a model name is letters, digits, '.', '_', '+' and '-', not starting with a dot, "
                                + "optionally owner/name");
            }
        }
        return name;
    }

    /** Where the model of that name lives (or would live); it may not exist. */
    public Path pathOf(String field, String name) {
        Path path = root.resolve(checkName(field, name)).normalize();
        if (!path.startsWith(root) || path.equals(root)) {
            throw ExpoException.invalidArgument(field, name, "the name must stay inside the model store");
        }
        return path;
    }

    /**
     * The folder of an existing model; NOT_FOUND otherwise, naming the request's field (an adapter asked for as
     * {@code adapter} is not called a model) and listing what the store has.
     */
    public Path existing(String field, String name) {
        Path path = pathOf(field, name);
        if (!Files.isDirectory(path)) {
            List<String> models = list();
            String known = models.isEmpty() ? "the store is empty"
                    : "the store has " + String.join(", ", models.subList(0, Math.min(models.size(), 20)))
                            + (models.size() > 20 ? ", ..." : "");
            throw ExpoException.notFound(field + " \"" + name + "\" is not in the model store " + root + " (" + known
                    + ")");
        }
        return path;
    }

    public boolean exists(String name) {
        return Files.isDirectory(pathOf("model", name));
    }

    /** The names of every model in the store, sorted. */
    public List<String> list() {
        List<String> names = new ArrayList<>();
        for (Path top : children(root)) {
            String topName = top.getFileName().toString();
            if (!SEGMENT.matcher(topName).matches()) {
                continue;
            }
            if (isModel(top)) {
                names.add(topName);
                continue;
            }
            for (Path nested : children(top)) {
                String nestedName = nested.getFileName().toString();
                if (SEGMENT.matcher(nestedName).matches() && isModel(nested)) {
                    names.add(topName + "/" + nestedName);
                }
            }
        }
        names.sort(Comparator.naturalOrder());
        return names;
    }

    private static boolean isModel(Path dir) {
        for (String marker : MODEL_MARKERS) {
            if (Files.isRegularFile(dir.resolve(marker))) {
                return true;
            }
        }
        return false;
    }

    private static List<Path> children(Path dir) {
        List<Path> result = new ArrayList<>();
        if (!Files.isDirectory(dir)) {
            return result;
        }
        try (DirectoryStream<Path> stream = Files.newDirectoryStream(dir, Files::isDirectory)) {
            stream.forEach(result::add);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list " + dir, e);
        }
        return result;
    }

    /** A fresh, empty folder to write a new model into before it is published. */
    public Path newStagingDir(String name) {
        checkName("output_model", name);
        try {
            Path staging = Files.createDirectories(root.resolve(STAGING));
            // The writer's pid in the name: another service sharing the store knows whether the writer still lives.
            return Files.createDirectory(staging.resolve(name.replace('/', '+') + "-" + ProcessHandle.current().pid()
                    + OWNER_END + UUID.randomUUID()));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create a staging folder in " + root, e);
        }
    }

    /**
     * Moves a complete staged model into place under {@code name}. The staged files must already be on disk
     * ({@link #fsyncTree}). Without {@code overwrite} an existing model is never touched (ALREADY_EXISTS).
     */
    public void publish(Path stagingDir, String name, boolean overwrite) {
        Path target = pathOf("output_model", name);
        try {
            Files.createDirectories(target.getParent());
            Path previous = null;
            if (Files.exists(target)) {
                if (!overwrite) {
                    throw new ExpoException(ExpoException.Kind.ALREADY_EXISTS,
                            "model \"" + name + "\" already exists in the store; choose another name or overwrite it");
                }
                previous = root.resolve(STAGING).resolve(name.replace('/', '+') + "-replaced-" + UUID.randomUUID());
                Files.move(target, previous, StandardCopyOption.ATOMIC_MOVE);
            }
            try {
                Files.move(stagingDir, target, StandardCopyOption.ATOMIC_MOVE);
            } catch (FileAlreadyExistsException e) {
                throw new ExpoException(ExpoException.Kind.ALREADY_EXISTS,
                        "model \"" + name + "\" appeared in the store while this one was being written");
            }
            fsyncDirectory(target.getParent());
            if (previous != null) {
                deleteTree(previous);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot move the new model into place at " + target, e);
        }
    }

    /**
     * Deletes staging folders left behind by a process that was killed mid-write: those whose writer (the pid in the
     * name) is no longer running, and any older than a day (a writer in another container, or an older layout). The
     * services share the store, so one starting never deletes what another is writing at that moment.
     */
    public void removeAbandonedStaging() {
        Instant dayAgo = Instant.now().minus(Duration.ofDays(1));
        for (Path dir : children(root.resolve(STAGING))) {
            Matcher owner = STAGING_OWNER.matcher(dir.getFileName().toString());
            boolean writerGone = owner.matches() && ProcessHandle.of(Long.parseLong(owner.group(1)))
                    .map(p -> !p.isAlive()).orElse(true);
            try {
                if (writerGone || Files.getLastModifiedTime(dir).toInstant().isBefore(dayAgo)) {
                    deleteTree(dir);
                }
            } catch (IOException e) {
                // gone meanwhile
            }
        }
    }

    /** Removes a staging folder (a failed or cancelled job's output); never throws. */
    public static void deleteTree(Path dir) {
        if (dir == null || !Files.exists(dir)) {
            return;
        }
        try (Stream<Path> walk = Files.walk(dir)) {
            for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        } catch (IOException | UncheckedIOException e) {
            // Best effort: whatever is left is under .staging and is removed at the next start.
        }
    }

    /**
     * Forces every file in the folder, then the folder itself, to disk. The files are synced concurrently: the file
     * system then commits them in one journal transaction instead of one each.
     */
    public static void fsyncTree(Path dir) throws IOException {
        List<Path> files;
        try (Stream<Path> listing = Files.list(dir)) {
            files = listing.filter(Files::isRegularFile).toList();
        }
        List<Thread> syncs = new ArrayList<>();
        List<IOException> failures = java.util.Collections.synchronizedList(new ArrayList<>());
        for (Path file : files) {
            syncs.add(Thread.ofPlatform().daemon().name("fsync").start(() -> {
                try (FileChannel channel = FileChannel.open(file, StandardOpenOption.WRITE)) {
                    channel.force(true);
                } catch (IOException e) {
                    failures.add(e);
                }
            }));
        }
        for (Thread sync : syncs) {
            try {
                sync.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException("interrupted while syncing " + dir, e);
            }
        }
        if (!failures.isEmpty()) {
            throw failures.getFirst();
        }
        fsyncDirectory(dir);
    }

    public static void fsyncDirectory(Path dir) throws IOException {
        try (FileChannel channel = FileChannel.open(dir, StandardOpenOption.READ)) {
            channel.force(true);
        }
    }
}

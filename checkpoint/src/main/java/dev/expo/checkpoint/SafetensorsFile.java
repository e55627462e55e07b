package dev.expo.checkpoint;

import dev.expo.common.ExpoException;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One safetensors file, its data section memory-mapped read-only: tensors are views into the page cache, so opening
 * a 10 GB shard costs no heap. Closing the file unmaps it; views must not be used afterwards.
 */
public final class SafetensorsFile implements AutoCloseable {

    private final Path path;
    private final SafetensorsHeader header;
    private final Map<String, TensorInfo> byName = new LinkedHashMap<>();
    private final Arena arena;
    private final MemorySegment data;

    private SafetensorsFile(Path path, SafetensorsHeader header, Arena arena, MemorySegment data) {
        this.path = path;
        this.header = header;
        this.arena = arena;
        this.data = data;
        for (TensorInfo tensor : header.tensors()) {
            byName.put(tensor.name(), tensor);
        }
    }

    public static SafetensorsFile open(Path path) {
        try (FileChannel channel = FileChannel.open(path, StandardOpenOption.READ)) {
            SafetensorsHeader header = SafetensorsHeader.read(channel, path.toString());
            Arena arena = Arena.ofShared();
            try {
                MemorySegment data = header.dataSize() == 0 ? MemorySegment.NULL
                        : channel.map(FileChannel.MapMode.READ_ONLY, header.dataStart(), header.dataSize(), arena);
                return new SafetensorsFile(path, header, arena, data);
            } catch (IOException | RuntimeException e) {
                arena.close();
                throw e;
            }
        } catch (NoSuchFileException e) {
            throw ExpoException.failedPrecondition("weights file " + path + " does not exist");
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + path, e);
        }
    }

    public Path path() {
        return path;
    }

    public SafetensorsHeader header() {
        return header;
    }

    /** Tensors in data order. */
    public List<TensorInfo> tensors() {
        return header.tensors();
    }

    public Map<String, String> metadata() {
        return header.metadata();
    }

    public TensorInfo info(String name) {
        TensorInfo info = byName.get(name);
        if (info == null) {
            throw ExpoException.notFound("tensor \"" + name + "\" is not in " + path);
        }
        return info;
    }

    public boolean contains(String name) {
        return byName.containsKey(name);
    }

    /** The tensor's bytes, a read-only view of the mapping. */
    public MemorySegment bytes(String name) {
        TensorInfo info = info(name);
        return info.byteSize() == 0 ? MemorySegment.ofArray(new byte[0])
                : data.asSlice(info.begin(), info.byteSize()).asReadOnly();
    }

    public Tensor tensor(String name) {
        return new Tensor(info(name), bytes(name));
    }

    @Override
    public void close() {
        arena.close();
    }
}

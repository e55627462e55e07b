package dev.expo.checkpoint;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.Map;

/** Writes small safetensors files in one go (tests, demo models, adapters). Large outputs use the layout directly. */
public final class SafetensorsWriter {

    private SafetensorsWriter() {
    }

    public static void write(Path file, List<Tensor> tensors) {
        write(file, tensors, Map.of("format", "pt"));
    }

    public static void write(Path file, List<Tensor> tensors, Map<String, String> metadata) {
        SafetensorsLayout layout = SafetensorsLayout.of(
                tensors.stream().map(t -> new TensorSpec(t.name(), t.dtype(), t.shape())).toList(), metadata);
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING)) {
            writeFully(channel, layout.header(), 0);
            for (Tensor tensor : tensors) {
                MemorySegment bytes = tensor.bytes();
                if (bytes.byteSize() != tensor.info().elementCount() * tensor.dtype().byteSize()) {
                    throw new IllegalArgumentException("tensor " + tensor.name() + " has " + bytes.byteSize()
                            + " bytes, its shape needs " + tensor.info().elementCount() * tensor.dtype().byteSize());
                }
                writeFully(channel, bytes.asByteBuffer(), layout.position(tensor.name()));
            }
            channel.force(true);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + file, e);
        }
    }

    public static void writeFully(FileChannel channel, ByteBuffer buffer, long position) throws IOException {
        long at = position;
        while (buffer.hasRemaining()) {
            at += channel.write(buffer, at);
        }
    }
}

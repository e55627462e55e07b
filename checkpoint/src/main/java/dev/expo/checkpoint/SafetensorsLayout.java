package dev.expo.checkpoint;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Where every tensor of a safetensors file to be written goes, decided before any data is written, so workers can
 * write tensors in any order straight to their final positions.
 *
 * <p>The header is byte-for-byte what the reference writer produces: compact JSON with {@code __metadata__} first,
 * tensors ordered by dtype (descending, in the reference's order) then name, padded with spaces so the data starts
 * on an 8-byte boundary.
 */
public final class SafetensorsLayout {

    private static final ObjectMapper JSON = new ObjectMapper();

    private final List<TensorInfo> tensors;
    private final Map<String, TensorInfo> byName = new HashMap<>();
    private final byte[] header;

    private SafetensorsLayout(List<TensorInfo> tensors, byte[] header) {
        this.tensors = List.copyOf(tensors);
        this.header = header;
        for (TensorInfo tensor : tensors) {
            if (byName.put(tensor.name(), tensor) != null) {
                throw new IllegalArgumentException("tensor " + tensor.name() + " appears twice");
            }
        }
    }

    /** Hugging Face's loader insists on {@code format: pt}. */
    public static SafetensorsLayout of(Collection<TensorSpec> specs) {
        return of(specs, Map.of("format", "pt"));
    }

    public static SafetensorsLayout of(Collection<TensorSpec> specs, Map<String, String> metadata) {
        List<TensorSpec> ordered = new ArrayList<>(specs);
        ordered.sort(Comparator.comparing((TensorSpec s) -> s.dtype().ordinal()).reversed()
                .thenComparing(TensorSpec::name));
        List<TensorInfo> tensors = new ArrayList<>(ordered.size());
        long offset = 0;
        for (TensorSpec spec : ordered) {
            long end = offset + spec.byteSize();
            tensors.add(new TensorInfo(spec.name(), spec.dtype(), spec.shape(), offset, end));
            offset = end;
        }
        return new SafetensorsLayout(tensors, encodeHeader(tensors, metadata));
    }

    private static byte[] encodeHeader(List<TensorInfo> tensors, Map<String, String> metadata) {
        Map<String, Object> root = new LinkedHashMap<>();
        if (metadata != null && !metadata.isEmpty()) {
            root.put("__metadata__", new LinkedHashMap<>(metadata));
        }
        for (TensorInfo tensor : tensors) {
            Map<String, Object> entry = new LinkedHashMap<>();
            entry.put("dtype", tensor.dtype().name());
            entry.put("shape", tensor.shape());
            entry.put("data_offsets", new long[] {tensor.begin(), tensor.end()});
            root.put(tensor.name(), entry);
        }
        byte[] json;
        try {
            json = JSON.writeValueAsString(root).getBytes(StandardCharsets.UTF_8);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
        int padding = (8 - json.length % 8) % 8;
        ByteArrayOutputStream out = new ByteArrayOutputStream(8 + json.length + padding);
        out.writeBytes(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(json.length + padding).array());
        out.writeBytes(json);
        for (int i = 0; i < padding; i++) {
            out.write(' ');
        }
        return out.toByteArray();
    }

    /** Tensors in data order, offsets relative to the data section. */
    public List<TensorInfo> tensors() {
        return tensors;
    }

    public TensorInfo info(String name) {
        TensorInfo info = byName.get(name);
        if (info == null) {
            throw new IllegalArgumentException("no tensor " + name + " in this layout");
        }
        return info;
    }

    /** The length prefix, JSON and padding: the first {@link #dataStart()} bytes of the file. */
    public ByteBuffer header() {
        return ByteBuffer.wrap(header).asReadOnlyBuffer();
    }

    public long dataStart() {
        return header.length;
    }

    public long dataSize() {
        return tensors.isEmpty() ? 0 : tensors.getLast().end();
    }

    public long fileSize() {
        return dataStart() + dataSize();
    }

    /** The absolute file position of the tensor's first byte. */
    public long position(String name) {
        return dataStart() + info(name).begin();
    }
}

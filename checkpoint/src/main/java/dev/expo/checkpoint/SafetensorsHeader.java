package dev.expo.checkpoint;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.expo.common.ExpoException;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.CharBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.MalformedInputException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A parsed and fully validated safetensors header.
 *
 * <p>Layout: an 8-byte little-endian header length N, N bytes of UTF-8 JSON
 * ({@code {name: {dtype, shape, data_offsets}}} plus an optional {@code __metadata__} string map), then the data.
 * Validation follows the reference implementation and adds nothing lenient: the header fits in the file, is UTF-8
 * JSON, every dtype is known, every byte range matches its shape, and the ranges tile the data section exactly (no
 * overlap, no gap, nothing past the end or after the last tensor).
 */
public record SafetensorsHeader(List<TensorInfo> tensors, Map<String, String> metadata, long headerLength,
                                long dataSize) {

    /** The reference implementation refuses headers above 100 MB; so do we, before allocating anything. */
    public static final long MAX_HEADER_LENGTH = 100_000_000L;
    private static final Set<String> ENTRY_FIELDS = Set.of("dtype", "shape", "data_offsets");
    private static final ObjectMapper JSON = new ObjectMapper()
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION);

    public SafetensorsHeader {
        tensors = List.copyOf(tensors);
        metadata = Collections.unmodifiableMap(new LinkedHashMap<>(metadata));
    }

    /** Where the data section starts in the file. */
    public long dataStart() {
        return 8 + headerLength;
    }

    /** Reads and validates the header of an open safetensors file; {@code source} names it in errors. */
    public static SafetensorsHeader read(FileChannel channel, String source) throws IOException {
        long fileSize = channel.size();
        if (fileSize < 8) {
            throw malformed(source, "is truncated: " + fileSize + " bytes, but a safetensors file starts with an "
                    + "8-byte header length");
        }
        ByteBuffer lengthBytes = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
        readFully(channel, lengthBytes, 0);
        long headerLength = lengthBytes.flip().getLong();
        if (headerLength < 0 || headerLength > MAX_HEADER_LENGTH) {
            throw malformed(source, "declares a header of " + Long.toUnsignedString(headerLength)
                    + " bytes; the limit is " + MAX_HEADER_LENGTH);
        }
        if (headerLength > fileSize - 8) {
            throw malformed(source, "declares a header of " + headerLength + " bytes, which runs past the end of the "
                    + "file (" + fileSize + " bytes): the file is truncated or not safetensors");
        }
        ByteBuffer header = ByteBuffer.allocate((int) headerLength);
        readFully(channel, header, 8);
        return parse(header.array(), fileSize - 8 - headerLength, source);
    }

    /** Validates header JSON bytes against a data section of {@code dataSize} bytes. */
    public static SafetensorsHeader parse(byte[] headerBytes, long dataSize, String source) {
        String text = decodeUtf8(headerBytes, source);
        if (!text.startsWith("{")) {
            throw malformed(source, "has a header that does not start with '{': not a safetensors file");
        }
        JsonNode root;
        try {
            root = JSON.readTree(text);
        } catch (JsonProcessingException e) {
            throw malformed(source, "has a header that is not valid JSON: " + e.getOriginalMessage());
        }
        if (!(root instanceof ObjectNode object)) {
            throw malformed(source, "has a header that is not a JSON object");
        }
        Map<String, String> metadata = new LinkedHashMap<>();
        List<TensorInfo> tensors = new ArrayList<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = object.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> field = it.next();
            if (field.getKey().equals("__metadata__")) {
                metadata.putAll(parseMetadata(field.getValue(), source));
            } else {
                tensors.add(parseEntry(field.getKey(), field.getValue(), source));
            }
        }
        checkTiling(tensors, dataSize, source);
        tensors.sort(Comparator.comparingLong(TensorInfo::begin).thenComparingLong(TensorInfo::end));
        return new SafetensorsHeader(tensors, metadata, headerBytes.length, dataSize);
    }

    private static String decodeUtf8(byte[] bytes, String source) {
        CharsetDecoder decoder = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT);
        ByteBuffer in = ByteBuffer.wrap(bytes);
        try {
            CharBuffer chars = decoder.decode(in);
            return chars.toString();
        } catch (MalformedInputException e) {
            throw malformed(source, "has a header that is not valid UTF-8 (bad byte near offset " + (8 + in.position())
                    + ")");
        } catch (CharacterCodingException e) {
            throw malformed(source, "has a header that is not valid UTF-8");
        }
    }

    private static Map<String, String> parseMetadata(JsonNode node, String source) {
        if (!node.isObject()) {
            throw malformed(source, "has a __metadata__ that is not an object of strings");
        }
        Map<String, String> metadata = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = node.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> entry = it.next();
            if (!entry.getValue().isTextual()) {
                throw malformed(source, "has a __metadata__ value for \"" + entry.getKey() + "\" that is not a string");
            }
            metadata.put(entry.getKey(), entry.getValue().asText());
        }
        return metadata;
    }

    private static TensorInfo parseEntry(String name, JsonNode node, String source) {
        String where = "tensor \"" + name + "\"";
        if (!node.isObject()) {
            throw malformed(source, where + " is not an object with dtype, shape and data_offsets");
        }
        for (Iterator<String> it = node.fieldNames(); it.hasNext(); ) {
            String key = it.next();
            if (!ENTRY_FIELDS.contains(key)) {
                throw malformed(source, where + " has an unexpected field \"" + key + "\"");
            }
        }
        JsonNode dtypeNode = node.get("dtype");
        if (dtypeNode == null || !dtypeNode.isTextual()) {
            throw malformed(source, where + " has no dtype string");
        }
        DType dtype;
        try {
            dtype = DType.parse(dtypeNode.asText(), source + ": " + where);
        } catch (ExpoException e) {
            throw malformed(e.getMessage());
        }
        long[] shape = longArray(node.get("shape"), -1, source, where + " shape");
        long[] offsets = longArray(node.get("data_offsets"), 2, source, where + " data_offsets");
        long begin = offsets[0];
        long end = offsets[1];
        if (begin > end) {
            throw malformed(source, where + " has data_offsets [" + begin + ", " + end + "] that end before they begin");
        }
        long expected;
        try {
            expected = Math.multiplyExact(TensorInfo.elementCount(shape), dtype.byteSize());
        } catch (ArithmeticException e) {
            throw malformed(source, where + " has a shape " + java.util.Arrays.toString(shape) + " too large to address");
        }
        if (end - begin != expected) {
            throw malformed(source, where + " of shape " + java.util.Arrays.toString(shape) + " and dtype " + dtype
                    + " needs " + expected + " bytes, but its data_offsets [" + begin + ", " + end + "] span "
                    + (end - begin));
        }
        return new TensorInfo(name, dtype, shape, begin, end);
    }

    private static long[] longArray(JsonNode node, int requiredLength, String source, String what) {
        if (node == null || !node.isArray() || (requiredLength >= 0 && node.size() != requiredLength)) {
            throw malformed(source, what + (requiredLength >= 0 ? " must be an array of " + requiredLength
                    + " non-negative integers" : " must be an array of non-negative integers"));
        }
        long[] values = new long[node.size()];
        for (int i = 0; i < values.length; i++) {
            JsonNode element = node.get(i);
            if (!element.isIntegralNumber() || !element.canConvertToLong() || element.asLong() < 0) {
                throw malformed(source, what + " must hold non-negative integers, not " + element);
            }
            values[i] = element.asLong();
        }
        return values;
    }

    /** The byte ranges must tile [0, dataSize) exactly, as the reference implementation requires. */
    private static void checkTiling(List<TensorInfo> tensors, long dataSize, String source) {
        List<TensorInfo> byOffset = new ArrayList<>(tensors);
        byOffset.sort(Comparator.comparingLong(TensorInfo::begin).thenComparingLong(TensorInfo::end));
        long covered = 0;
        TensorInfo previous = null;
        for (TensorInfo tensor : byOffset) {
            if (tensor.end() > dataSize) {
                throw malformed(source, "tensor \"" + tensor.name() + "\" has data_offsets [" + tensor.begin() + ", "
                        + tensor.end() + "] past the end of the data section (" + dataSize + " bytes)");
            }
            if (tensor.begin() < covered) {
                throw malformed(source, "tensors \"" + previous.name() + "\" [" + previous.begin() + ", "
                        + previous.end() + "] and \"" + tensor.name() + "\" [" + tensor.begin() + ", " + tensor.end()
                        + "] overlap");
            }
            if (tensor.begin() > covered) {
                throw malformed(source, "data bytes [" + covered + ", " + tensor.begin() + ") belong to no tensor");
            }
            covered = tensor.end();
            previous = tensor;
        }
        if (covered != dataSize) {
            throw malformed(source, "has " + (dataSize - covered) + " bytes of data after the last tensor (data "
                    + "section " + dataSize + " bytes, tensors cover " + covered + ")");
        }
    }

    private static void readFully(FileChannel channel, ByteBuffer buffer, long position) throws IOException {
        while (buffer.hasRemaining()) {
            int n = channel.read(buffer, position + buffer.position());
            if (n < 0) {
                throw new IOException("unexpected end of file");
            }
        }
    }

    private static ExpoException malformed(String source, String problem) {
        return malformed(source + " " + problem);
    }

    private static ExpoException malformed(String message) {
        return ExpoException.invalidArgument("malformed safetensors file: " + message);
    }
}

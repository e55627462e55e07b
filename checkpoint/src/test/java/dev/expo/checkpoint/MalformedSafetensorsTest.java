package dev.expo.checkpoint;

import dev.expo.common.ExpoException;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Every malformed file gives INVALID_ARGUMENT with a message that names the problem, never a crash. */
class MalformedSafetensorsTest {

    @TempDir
    Path dir;

    static Stream<Arguments> corpus() {
        String ok = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
        return Stream.of(
                Arguments.of("empty file", new byte[0], "truncated"),
                Arguments.of("truncated length", new byte[] {10, 0, 0}, "truncated"),
                Arguments.of("header length past EOF", file(ok, 8, 1000), "runs past the end of the file"),
                Arguments.of("absurd header length", lengthOnly(Long.MAX_VALUE), "the limit is"),
                Arguments.of("negative header length", lengthOnly(-5), "the limit is"),
                Arguments.of("truncated data", file(ok, 4), "past the end of the data section"),
                Arguments.of("not JSON", file("{\"a\": [1, 2", 0), "not valid JSON"),
                Arguments.of("not an object", file("[1, 2, 3]    ", 0), "does not start with '{'"),
                Arguments.of("non-UTF-8", bytesFile(new byte[] {'{', '"', (byte) 0xC3, (byte) 0x28, '"', ':', '1', '}'}, 0),
                        "not valid UTF-8"),
                Arguments.of("unknown dtype",
                        file("{\"a\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8), "unknown dtype \"Q4\""),
                Arguments.of("shape/size mismatch",
                        file("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8), "needs 12 bytes"),
                Arguments.of("overlapping offsets",
                        file("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                                + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12), "overlap"),
                Arguments.of("out-of-range offsets",
                        file("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[100,108]}}", 8),
                        "past the end of the data section"),
                Arguments.of("gap in the data",
                        file("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8), "belong to no tensor"),
                Arguments.of("trailing bytes",
                        file("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8), "after the last tensor"),
                Arguments.of("reversed offsets",
                        file("{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", 8), "end before they begin"),
                Arguments.of("negative dimension",
                        file("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8), "non-negative"),
                Arguments.of("missing offsets", file("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8), "data_offsets"),
                Arguments.of("duplicate tensor",
                        file("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                                + "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8), "Duplicate field"),
                Arguments.of("non-string metadata",
                        file("{\"__metadata__\":{\"format\":1},\"a\":{\"dtype\":\"F32\",\"shape\":[2],"
                                + "\"data_offsets\":[0,8]}}", 8), "not a string"),
                Arguments.of("overflowing shape",
                        file("{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,8]}}", 8),
                        "too large"),
                Arguments.of("unexpected field",
                        file("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":1}}", 8),
                        "unexpected field"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("corpus")
    void malformedFileIsAClearInvalidArgument(String name, byte[] contents, String expected) throws IOException {
        Path file = dir.resolve("bad.safetensors");
        Files.write(file, contents);
        assertThatThrownBy(() -> SafetensorsFile.open(file).close())
                .isInstanceOf(ExpoException.class)
                .satisfies(e -> org.assertj.core.api.Assertions.assertThat(((ExpoException) e).kind())
                        .isEqualTo(ExpoException.Kind.INVALID_ARGUMENT))
                .hasMessageContaining(expected)
                .hasMessageContaining(file.toString());
    }

    /** An 8-byte length prefix, the header, then {@code dataBytes} zero bytes. */
    private static byte[] file(String header, int dataBytes) {
        return bytesFile(header.getBytes(StandardCharsets.UTF_8), dataBytes);
    }

    private static byte[] file(String header, int dataBytes, long declaredLength) {
        byte[] bytes = file(header, dataBytes);
        ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).putLong(0, declaredLength);
        return bytes;
    }

    private static byte[] bytesFile(byte[] header, int dataBytes) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(header.length).array());
        out.writeBytes(header);
        out.writeBytes(new byte[dataBytes]);
        return out.toByteArray();
    }

    private static byte[] lengthOnly(long length) {
        byte[] bytes = Arrays.copyOf(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(length).array(), 64);
        return bytes;
    }
}

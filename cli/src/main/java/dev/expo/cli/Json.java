package dev.expo.cli;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.MessageOrBuilder;
import com.google.protobuf.util.JsonFormat;

/** Machine-readable output: one JSON document per line, field names as in the proto (snake_case). */
final class Json {

    static final ObjectMapper MAPPER = new ObjectMapper().disable(SerializationFeature.INDENT_OUTPUT);
    private static final JsonFormat.Printer PROTO = JsonFormat.printer()
            .preservingProtoFieldNames()
            .alwaysPrintFieldsWithNoPresence()
            .omittingInsignificantWhitespace();

    private Json() {
    }

    static String of(Object value) {
        try {
            return MAPPER.writeValueAsString(value);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    static String of(MessageOrBuilder message) {
        try {
            return PROTO.print(message);
        } catch (InvalidProtocolBufferException e) {
            throw new IllegalStateException(e);
        }
    }

    /** A message as a Jackson tree, to nest in a larger JSON document. */
    static com.fasterxml.jackson.databind.JsonNode tree(MessageOrBuilder message) {
        try {
            return MAPPER.readTree(of(message));
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }
}

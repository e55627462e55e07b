package dev.expo.extrapolation.engine;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/** The engine is plain Java: no Quarkus, CDI, gRPC or wire-format types; only the grpc package sees those. */
class EngineIsPlainJavaTest {

    private static final Pattern FORBIDDEN = Pattern.compile(
            "^import (static )?(io\\.quarkus|jakarta\\.|io\\.grpc|io\\.smallrye|io\\.micrometer|dev\\.expo\\.api)",
            Pattern.MULTILINE);

    @Test
    void engineSourcesImportNoFrameworkOrProtoTypes() throws IOException {
        Path engine = Path.of("src/main/java/dev/expo/extrapolation/engine");
        List<Path> sources;
        try (Stream<Path> walk = Files.walk(engine)) {
            sources = walk.filter(p -> p.toString().endsWith(".java")).toList();
        }
        assertThat(sources).hasSizeGreaterThan(10);
        for (Path source : sources) {
            assertThat(FORBIDDEN.matcher(Files.readString(source)).find()).as(source.toString()).isFalse();
        }
    }
}

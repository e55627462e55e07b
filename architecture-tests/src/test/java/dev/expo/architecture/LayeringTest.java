package dev.expo.architecture;

import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;
import static com.tngtech.archunit.library.Architectures.layeredArchitecture;

/**
 * The layering the module graph leaves to convention, checked over every module's compiled main classes.
 * The build already keeps Quarkus, gRPC and proto off an engine's classpath (maven-enforcer in the engine poms); these
 * rules state the rest: which of our own packages may use which, and where the wire format may appear.
 */
class LayeringTest {

    private static final String[] PLAIN_JAVA = {"dev.expo.common..", "dev.expo.checkpoint..", "dev.expo.modeling..",
            "dev.expo.extrapolation.engine..", "dev.expo.inference.engine..", "dev.expo.training.engine..",
            "dev.expo.evaluation.engine.."};

    private static JavaClasses classes;

    @BeforeAll
    static void importClasses() {
        classes = new ClassFileImporter()
                .withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_TESTS)
                .importPackages("dev.expo");
    }

    /** engines -> modeling -> checkpoint -> common; nothing depends on an app or a tool; no app on another app. */
    @Test
    void layersDependOnlyDownwards() {
        layeredArchitecture().consideringOnlyDependenciesInLayers()
                .layer("Common").definedBy("dev.expo.common..")
                .layer("Checkpoint").definedBy("dev.expo.checkpoint..")
                .layer("Modeling").definedBy("dev.expo.modeling..")
                .layer("ExtrapolationEngine").definedBy("dev.expo.extrapolation.engine..")
                .layer("InferenceEngine").definedBy("dev.expo.inference.engine..")
                .layer("TrainingEngine").definedBy("dev.expo.training.engine..")
                .layer("EvaluationEngine").definedBy("dev.expo.evaluation.engine..")
                .layer("Wire").definedBy("dev.expo.api..")
                .layer("ServiceSupport").definedBy("dev.expo.service..")
                .layer("ExtrapolationApp").definedBy("dev.expo.extrapolation.config..", "dev.expo.extrapolation.grpc..")
                .layer("InferenceApp").definedBy("dev.expo.inference.config..", "dev.expo.inference.grpc..")
                .layer("TrainingApp").definedBy("dev.expo.training.config..", "dev.expo.training.grpc..")
                .layer("Gateway").definedBy("dev.expo.gateway..")
                .layer("Tools").definedBy("dev.expo.cli..", "dev.expo.benchmarks..")

                .whereLayer("Common").mayNotAccessAnyLayer()
                .whereLayer("Checkpoint").mayOnlyAccessLayers("Common")
                .whereLayer("Modeling").mayOnlyAccessLayers("Checkpoint", "Common")
                .whereLayer("ExtrapolationEngine").mayOnlyAccessLayers("Modeling", "Checkpoint", "Common")
                .whereLayer("InferenceEngine").mayOnlyAccessLayers("Modeling", "Checkpoint", "Common")
                .whereLayer("TrainingEngine").mayOnlyAccessLayers("Modeling", "Checkpoint", "Common")
                .whereLayer("EvaluationEngine").mayOnlyAccessLayers("Common")
                .whereLayer("Wire").mayNotAccessAnyLayer()
                .whereLayer("ServiceSupport").mayOnlyAccessLayers("Wire", "Checkpoint", "Common")

                .whereLayer("ExtrapolationEngine").mayOnlyBeAccessedByLayers("ExtrapolationApp", "Tools")
                .whereLayer("InferenceEngine").mayOnlyBeAccessedByLayers("InferenceApp", "Tools")
                .whereLayer("TrainingEngine").mayOnlyBeAccessedByLayers("TrainingApp", "Tools")
                .whereLayer("EvaluationEngine").mayOnlyBeAccessedByLayers("Gateway", "Tools")
                .whereLayer("ServiceSupport").mayOnlyBeAccessedByLayers(
                        "ExtrapolationApp", "InferenceApp", "TrainingApp", "Gateway")
                .whereLayer("ExtrapolationApp").mayNotBeAccessedByAnyLayer()
                .whereLayer("InferenceApp").mayNotBeAccessedByAnyLayer()
                .whereLayer("TrainingApp").mayNotBeAccessedByAnyLayer()
                .whereLayer("Gateway").mayNotBeAccessedByAnyLayer()
                .whereLayer("Tools").mayNotBeAccessedByAnyLayer()
                .check(classes);
    }

    /** The engines and the libraries under them are plain Java: no framework, no logging facade but System.Logger. */
    @Test
    void enginesAndLibrariesUseNoServiceFramework() {
        noClasses().that().resideInAnyPackage(PLAIN_JAVA)
                .should().dependOnClassesThat().resideInAnyPackage("io.quarkus..", "jakarta..", "io.grpc..",
                        "com.google.protobuf..", "io.micrometer..", "io.smallrye..", "io.vertx..", "org.jboss..")
                .check(classes);
    }

    /** The wire format lives only in proto and in what speaks it: the apps' gRPC layers, the gateway, the clients. */
    @Test
    void wireFormatStaysAtTheEdges() {
        noClasses().that().resideOutsideOfPackages("dev.expo.api..", "dev.expo.extrapolation.grpc..",
                        "dev.expo.inference.grpc..", "dev.expo.training.grpc..", "dev.expo.gateway..",
                        "dev.expo.service..", "dev.expo.cli..", "dev.expo.benchmarks..")
                .should().dependOnClassesThat().resideInAnyPackage("dev.expo.api..", "com.google.protobuf..")
                .check(classes);
    }
}

package dev.expo.deploy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import com.fasterxml.jackson.dataformat.yaml.YAMLParser;
import io.fabric8.kubernetes.schema.validator.ValidationReport;
import io.fabric8.kubernetes.schema.validator.Validator;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The Kubernetes manifests in {@code deploy/kubernetes}: every resource valid against the Kubernetes OpenAPI schemas
 * (fabric8's validator: unknown fields, wrong types and missing required fields are errors), every Kustomization
 * rendered by {@code kubectl kustomize} when kubectl is installed and its output valid too, and what the system needs
 * of them: grpc probes on every container's port, resource requests, the inference replicas behind a headless
 * Service the gateway resolves, only the gateway exposed, a disruption budget, a GPU for inference and training in the
 * GPU overlay.
 */
class KubernetesManifestsTest {

    static final Path MANIFESTS = Path.of("kubernetes");
    private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());
    private static Validator validator;

    @BeforeAll
    static void schemas() {
        validator = Validator.newInstance();
    }

    /** The YAML documents of a file or of kubectl's output. */
    static List<JsonNode> documents(String yaml) throws IOException {
        List<JsonNode> documents = new ArrayList<>();
        try (YAMLParser parser = new YAMLFactory().createParser(yaml)) {
            for (JsonNode node : YAML.readValues(parser, JsonNode.class).readAll()) {
                if (node != null && !node.isNull() && !node.isEmpty()) {
                    documents.add(node);
                }
            }
        }
        return documents;
    }

    static List<Path> yamlFiles() throws IOException {
        try (Stream<Path> files = Files.walk(MANIFESTS)) {
            return files.filter(p -> p.toString().endsWith(".yaml")).sorted().toList();
        }
    }

    static List<Path> kustomizations() throws IOException {
        return yamlFiles().stream().filter(p -> p.getFileName().toString().equals("kustomization.yaml")).toList();
    }

    /** The strategic-merge patches the Kustomizations name: partial resources, checked where they are applied. */
    static Set<Path> patches() throws IOException {
        Set<Path> patches = new HashSet<>();
        for (Path kustomization : kustomizations()) {
            for (JsonNode patch : documents(Files.readString(kustomization)).getFirst().path("patches")) {
                patches.add(kustomization.getParent().resolve(patch.path("path").asText()).normalize());
            }
        }
        return patches;
    }

    static List<JsonNode> baseResources() throws IOException {
        List<JsonNode> resources = new ArrayList<>();
        for (Path file : yamlFiles()) {
            if (file.startsWith(MANIFESTS.resolve("base")) && !file.endsWith("kustomization.yaml")) {
                resources.addAll(documents(Files.readString(file)));
            }
        }
        return resources;
    }

    /**
     * Kubernetes' IntOrString fields take a number or a string; fabric8's schema has them as strings only, so an
     * integer there is the one error that is not one.
     */
    static final java.util.regex.Pattern INT_OR_STRING = java.util.regex.Pattern.compile(
            "\\[Path '[^']*/(maxUnavailable|minAvailable|maxSurge|targetPort)'] Instance type \\(integer\\) does not "
                    + "match any allowed primitive type \\(allowed: \\[\"string\"]\\)");

    static List<String> errors(JsonNode resource) {
        ValidationReport report = validator.validate(resource);
        return report.getMessages().stream().filter(m -> m.getLevel().toString().equals("ERROR"))
                .map(m -> m.getMessage()).filter(m -> !INT_OR_STRING.matcher(m).find()).toList();
    }

    static void assertValid(JsonNode resource, String where) {
        assertThat(errors(resource)).as(where + ": " + resource.path("kind").asText() + " "
                + resource.path("metadata").path("name").asText()).isEmpty();
    }

    @Test
    void theValidatorCatchesWhatKubernetesWouldRefuse() throws IOException {
        JsonNode deployment = baseResources().stream().filter(r -> r.path("kind").asText().equals("Deployment"))
                .findFirst().orElseThrow();
        ObjectNode typo = deployment.deepCopy();
        ((ObjectNode) typo.path("spec")).put("replicaz", 2);
        assertThat(errors(typo)).as("an unknown field").isNotEmpty();
        ObjectNode wrongType = deployment.deepCopy();
        ((ObjectNode) wrongType.path("spec")).put("replicas", "two");
        assertThat(errors(wrongType)).as("a string for an integer").isNotEmpty();
        ObjectNode noContainers = deployment.deepCopy();
        ((ObjectNode) noContainers.path("spec").path("template").path("spec")).remove("containers");
        assertThat(errors(noContainers)).as("a pod without its required containers").isNotEmpty();
    }

    @Test
    void everyResourceFileIsValidAgainstTheKubernetesSchemas() throws IOException {
        Set<Path> patches = patches();
        int checked = 0;
        for (Path file : yamlFiles()) {
            if (file.endsWith("kustomization.yaml") || patches.contains(file.normalize())) {
                continue;
            }
            for (JsonNode resource : documents(Files.readString(file))) {
                assertValid(resource, file.toString());
                checked++;
            }
        }
        assertThat(checked).isGreaterThanOrEqualTo(10);
    }

    @Test
    void everyKustomizationListsFilesThatExistAndEveryResourceFileIsListed() throws IOException {
        Set<Path> listed = new HashSet<>();
        for (Path kustomization : kustomizations()) {
            JsonNode k = documents(Files.readString(kustomization)).getFirst();
            for (String field : List.of("resources", "patches")) {
                for (JsonNode entry : k.path(field)) {
                    Path target = kustomization.getParent().resolve(entry.isTextual() ? entry.asText()
                            : entry.path("path").asText()).normalize();
                    assertThat(target).as(kustomization + " " + field).exists();
                    listed.add(target);
                }
            }
        }
        for (Path file : yamlFiles()) {
            if (!file.endsWith("kustomization.yaml")) {
                assertThat(listed).as("listed in a kustomization.yaml").contains(file.normalize());
            }
        }
    }

    /** Each Kustomization as kubectl renders it: valid, and with the GPU overlay's GPUs where they belong. */
    @Test
    void everyKustomizationRendersToValidResources() throws Exception {
        String kubectl = onPath("kubectl");
        assumeTrue(kubectl != null, "kubectl is not installed: the rendered Kustomizations are not checked "
                + "(each file still is)");
        Map<String, List<JsonNode>> rendered = new HashMap<>();
        for (Path kustomization : kustomizations()) {
            Path dir = kustomization.getParent();
            Process process = new ProcessBuilder(kubectl, "kustomize", dir.toString()).redirectErrorStream(false)
                    .start();
            String out = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            String err = new String(process.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
            assertThat(process.waitFor(60, TimeUnit.SECONDS)).isTrue();
            assertThat(process.exitValue()).as("kubectl kustomize " + dir + ": " + err).isZero();
            List<JsonNode> resources = documents(out);
            for (JsonNode resource : resources) {
                assertValid(resource, "kubectl kustomize " + dir);
            }
            rendered.put(MANIFESTS.relativize(dir).toString(), resources);
        }
        assertThat(rendered).containsKeys("base", "overlays/cpu", "overlays/gpu");
        for (String overlay : List.of("overlays/cpu", "overlays/gpu")) {
            assertThat(rendered.get(overlay)).allSatisfy(r -> {
                if (!r.path("kind").asText().equals("Namespace")) {
                    assertThat(r.path("metadata").path("namespace").asText()).as(overlay).isEqualTo("expo");
                }
            });
        }
        for (String component : List.of("expo-inference", "expo-training")) {
            JsonNode container = deployment(rendered.get("overlays/gpu"), component).path("spec").path("template")
                    .path("spec").path("containers").get(0);
            assertThat(container.path("resources").path("limits").path("nvidia.com/gpu").asInt())
                    .as(component + " in the GPU overlay").isEqualTo(1);
            assertThat(container.path("image").asText()).endsWith("-cuda");
            JsonNode cpu = deployment(rendered.get("overlays/cpu"), component).path("spec").path("template")
                    .path("spec").path("containers").get(0);
            assertThat(cpu.path("resources").path("limits").has("nvidia.com/gpu")).as(component + " on CPU")
                    .isFalse();
        }
        assertThat(deployment(rendered.get("overlays/gpu"), "expo-inference").path("spec").path("template")
                .path("spec").path("containers").get(0).path("env").toString()).contains("INFERENCE_DEVICE", "gpu");
    }

    @Test
    void everyContainerHasGrpcProbesOnItsPortResourceRequestsAndTimeToDrain() throws IOException {
        List<JsonNode> deployments = baseResources().stream().filter(r -> r.path("kind").asText()
                .equals("Deployment")).toList();
        assertThat(deployments).extracting(d -> d.path("metadata").path("name").asText()).containsExactlyInAnyOrder(
                "expo-gateway", "expo-inference", "expo-extrapolation", "expo-training");
        for (JsonNode deployment : deployments) {
            String name = deployment.path("metadata").path("name").asText();
            JsonNode pod = deployment.path("spec").path("template").path("spec");
            assertThat(pod.path("terminationGracePeriodSeconds").asInt()).as(name).isGreaterThanOrEqualTo(30);
            for (JsonNode container : pod.path("containers")) {
                int port = container.path("ports").get(0).path("containerPort").asInt();
                for (String probe : List.of("readinessProbe", "livenessProbe")) {
                    assertThat(container.path(probe).path("grpc").path("port").asInt()).as(name + " " + probe)
                            .isEqualTo(port);
                }
                assertThat(container.path("resources").path("requests").has("cpu")).as(name).isTrue();
                assertThat(container.path("resources").path("requests").has("memory")).as(name).isTrue();
                assertThat(env(container, "QUARKUS_HTTP_PORT")).as(name).isEqualTo(String.valueOf(port));
                assertThat(container.path("volumeMounts").toString()).as(name).contains("/models");
            }
        }
    }

    @Test
    void theGatewayReachesEveryReplicaAndIsTheOnlyServiceExposed() throws IOException {
        List<JsonNode> resources = baseResources();
        Map<String, JsonNode> services = new HashMap<>();
        for (JsonNode r : resources) {
            if (r.path("kind").asText().equals("Service")) {
                services.put(r.path("metadata").path("name").asText(), r);
            }
        }
        JsonNode headless = services.get("expo-inference-headless");
        assertThat(headless.path("spec").path("clusterIP").asText()).isEqualTo("None");
        JsonNode gateway = deployment(resources, "expo-gateway").path("spec").path("template").path("spec")
                .path("containers").get(0);
        assertThat(env(gateway, "EXPO_BACKENDS_INFERENCE")).isEqualTo("dns:///expo-inference-headless:"
                + headless.path("spec").path("ports").get(0).path("port").asInt());
        for (String[] backend : List.of(new String[] {"EXPO_BACKENDS_EXTRAPOLATION", "expo-extrapolation"},
                new String[] {"EXPO_BACKENDS_TRAINING", "expo-training"})) {
            assertThat(env(gateway, backend[0])).isEqualTo(backend[1] + ":"
                    + services.get(backend[1]).path("spec").path("ports").get(0).path("port").asInt());
        }
        // Each Service selects the pods of its Deployment.
        for (JsonNode service : services.values()) {
            String selected = service.path("spec").path("selector").path("app.kubernetes.io/name").asText();
            assertThat(deployment(resources, selected).path("spec").path("template").path("metadata")
                    .path("labels").path("app.kubernetes.io/name").asText()).isEqualTo(selected);
            String type = service.path("spec").path("type").asText("ClusterIP");
            if (service.path("metadata").path("name").asText().equals("expo-gateway")) {
                assertThat(type).isEqualTo("LoadBalancer");
            } else {
                assertThat(type).as(service.path("metadata").path("name").asText()).isEqualTo("ClusterIP");
            }
        }
        JsonNode policy = resources.stream().filter(r -> r.path("kind").asText().equals("NetworkPolicy"))
                .findFirst().orElseThrow();
        assertThat(policy.path("spec").path("podSelector").toString()).contains("inference", "extrapolation",
                "training");
        assertThat(policy.path("spec").path("ingress").toString()).contains("\"app.kubernetes.io/component\":"
                + "\"gateway\"");
        JsonNode budget = resources.stream().filter(r -> r.path("kind").asText().equals("PodDisruptionBudget"))
                .findFirst().orElseThrow();
        assertThat(budget.path("spec").path("selector").path("matchLabels").path("app.kubernetes.io/name").asText())
                .isEqualTo("expo-inference");
        assertThat(deployment(resources, "expo-inference").path("spec").path("replicas").asInt())
                .isGreaterThanOrEqualTo(2);
    }

    private static JsonNode deployment(List<JsonNode> resources, String name) {
        return resources.stream().filter(r -> r.path("kind").asText().equals("Deployment")
                && r.path("metadata").path("name").asText().equals(name)).findFirst()
                .orElseThrow(() -> new AssertionError("no Deployment " + name));
    }

    private static String env(JsonNode container, String name) {
        for (JsonNode variable : container.path("env")) {
            if (variable.path("name").asText().equals(name)) {
                return variable.path("value").asText();
            }
        }
        return null;
    }

    private static String onPath(String command) {
        for (String dir : System.getenv().getOrDefault("PATH", "").split(File.pathSeparator)) {
            Path candidate = Path.of(dir, command);
            if (Files.isExecutable(candidate)) {
                return candidate.toString();
            }
        }
        return null;
    }
}

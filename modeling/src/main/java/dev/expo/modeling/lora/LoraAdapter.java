package dev.expo.modeling.lora;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.expo.checkpoint.Checkpoint;
import dev.expo.checkpoint.TensorInfo;
import dev.expo.common.ExpoException;
import dev.expo.modeling.ModelOptions;
import dev.expo.modeling.NdArrays;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A PEFT LoRA adapter (adapter_config.json + adapter_model.safetensors, PEFT's key names) loaded for the runtime:
 * for each adapted module, A [r, in] and B [out, r]. Applied unmerged, a module computes
 * {@code W x + scale * (lora_alpha / r) * B (A x)} with a per-request {@code scale} (ExPO on a LoRA-trained model is
 * scale = 1 + alpha).
 */
public final class LoraAdapter implements AutoCloseable {

    /** PEFT's saved key: base_model.model.&lt;module path&gt;.lora_A.weight (no adapter name in saved keys). */
    private static final Pattern KEY = Pattern.compile("^base_model\\.model\\.(.+)\\.lora_([AB])\\.weight$");
    private static final ObjectMapper JSON = new ObjectMapper();

    /** One adapted linear layer; {@code scaling} is its lora_alpha / r (both may come from the config's patterns). */
    public record Module(NDArray a, NDArray b, double scaling) {
    }

    private final LoraConfig config;
    private final NDManager manager;
    private final Map<String, Module> modules;

    private LoraAdapter(LoraConfig config, NDManager manager, Map<String, Module> modules) {
        this.config = config;
        this.manager = manager;
        this.modules = modules;
    }

    /**
     * An adapter over arrays the caller made (a trainer's tensors, which may require gradients): module path ->
     * {A [r, in], B [out, r]}, each module's scaling from the config. The arrays stay the caller's to close.
     */
    public static LoraAdapter of(LoraConfig config, NDManager manager, Map<String, NDArray[]> arrays) {
        Map<String, Module> modules = new HashMap<>();
        arrays.forEach((path, ab) -> modules.put(path, new Module(ab[0], ab[1], config.scaling(path))));
        return new LoraAdapter(config, manager, modules);
    }

    public static LoraAdapter load(Path dir, NDManager parent, ModelOptions options) {
        LoraConfig config = LoraConfig.read(dir);
        NDManager manager = parent.newSubManager();
        Map<String, NDArray> as = new HashMap<>();
        Map<String, NDArray> bs = new HashMap<>();
        try (Checkpoint weights = Checkpoint.open(dir, "adapter_model")) {
            for (TensorInfo tensor : weights.tensors()) {
                Matcher matcher = KEY.matcher(tensor.name());
                if (tensor.name().contains(".lora_embedding_") || (matcher.matches()
                        && !MODULE.matcher(matcher.group(1)).matches())) {
                    throw ExpoException.failedPrecondition(dir + " adapts " + (matcher.matches() ? matcher.group(1)
                            : tensor.name()) + "; this runtime applies LoRA to the decoder layers' attention and MLP "
                            + "projections only");
                }
                if (!matcher.matches()) {
                    throw ExpoException.invalidArgument(dir + ": \"" + tensor.name() + "\" is not a PEFT LoRA key "
                            + "(base_model.model.<module>.lora_A.weight / lora_B.weight)");
                }
                NDArray array = NdArrays.load(manager, weights.tensor(tensor.name()), options);
                (matcher.group(2).equals("A") ? as : bs).put(matcher.group(1), array);
            }
        } catch (RuntimeException e) {
            manager.close();
            throw e;
        }
        Map<String, Module> modules = new HashMap<>();
        for (Map.Entry<String, NDArray> a : as.entrySet()) {
            NDArray b = bs.get(a.getKey());
            if (b == null || b.getShape().get(1) != a.getValue().getShape().get(0)) {
                manager.close();
                throw ExpoException.invalidArgument(dir + ": module " + a.getKey() + " has lora_A of shape "
                        + a.getValue().getShape() + " but " + (b == null ? "no lora_B" : "lora_B of shape "
                        + b.getShape()));
            }
            long rank = a.getValue().getShape().get(0);
            int expected = config.rank(a.getKey());
            if (rank != expected) {
                manager.close();
                throw ExpoException.invalidArgument(dir + ": module " + a.getKey() + " has rank " + rank + " but "
                        + "adapter_config.json gives it r = " + expected + " (r, or a rank_pattern entry)");
            }
            modules.put(a.getKey(), new Module(a.getValue(), b, config.scaling(a.getKey())));
        }
        if (modules.isEmpty()) {
            manager.close();
            throw ExpoException.invalidArgument(dir + " holds no LoRA weights");
        }
        return new LoraAdapter(config, manager, modules);
    }

    public LoraConfig config() {
        return config;
    }

    /** The adapted module at that path (e.g. model.layers.3.self_attn.q_proj), or null. */
    public Module module(String path) {
        return modules.get(path);
    }

    public List<String> modulePaths() {
        return new ArrayList<>(modules.keySet());
    }

    private static final Pattern MODULE = Pattern.compile("model\\.layers\\.(\\d+)\\.(self_attn|mlp)\\.(\\w+)");

    /**
     * Checks that this adapter fits a decoder of that configuration: every module it adapts exists there with the
     * adapter's input and output sizes. FAILED_PRECONDITION naming the first mismatch otherwise (an adapter trained
     * on another base model).
     */
    public void checkFits(dev.expo.modeling.llama.LlamaConfig model, String adapterName) {
        for (Map.Entry<String, Module> entry : modules.entrySet()) {
            Matcher m = MODULE.matcher(entry.getKey());
            int[] inOut = !m.matches() || Integer.parseInt(m.group(1)) >= model.numLayers() ? null
                    : moduleShape(model, m.group(3));
            if (inOut == null) {
                throw ExpoException.failedPrecondition("adapter \"" + adapterName + "\" adapts " + entry.getKey()
                        + ", which the model does not have (trained on another base model?)");
            }
            long in = entry.getValue().a().getShape().get(1);
            long out = entry.getValue().b().getShape().get(0);
            if (in != inOut[0] || out != inOut[1]) {
                throw ExpoException.failedPrecondition("adapter \"" + adapterName + "\" has " + entry.getKey()
                        + " for " + in + " -> " + out + " but the model's is " + inOut[0] + " -> " + inOut[1]
                        + " (trained on another base model?)");
            }
        }
    }

    /**
     * The (in, out) features of a decoder layer's projection that LoRA can adapt ({@code q_proj} ... {@code down_proj}),
     * or null for a name the model has not: lora_A is [r, in] and lora_B [out, r].
     */
    public static int[] moduleShape(dev.expo.modeling.llama.LlamaConfig model, String projection) {
        int q = model.numHeads() * model.headDim();
        int kv = model.numKvHeads() * model.headDim();
        return switch (projection) {
            case "q_proj" -> new int[] {model.hiddenSize(), q};
            case "k_proj", "v_proj" -> new int[] {model.hiddenSize(), kv};
            case "o_proj" -> new int[] {q, model.hiddenSize()};
            case "gate_proj", "up_proj" -> new int[] {model.hiddenSize(), model.intermediateSize()};
            case "down_proj" -> new int[] {model.intermediateSize(), model.hiddenSize()};
            default -> null;
        };
    }

    /**
     * Writes the adapter in PEFT's format (adapter_config.json and adapter_model.safetensors with PEFT's key names),
     * float32, so PEFT's {@code PeftModel.from_pretrained} loads it.
     */
    public void save(Path dir) {
        try {
            Files.createDirectories(dir);
            List<dev.expo.checkpoint.Tensor> tensors = new ArrayList<>();
            for (Map.Entry<String, Module> entry : new java.util.TreeMap<>(modules).entrySet()) {
                tensors.add(tensor("base_model.model." + entry.getKey() + ".lora_A.weight", entry.getValue().a()));
                tensors.add(tensor("base_model.model." + entry.getKey() + ".lora_B.weight", entry.getValue().b()));
            }
            dev.expo.checkpoint.SafetensorsWriter.write(dir.resolve("adapter_model.safetensors"), tensors);
            config.write(dir);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write the adapter to " + dir, e);
        }
    }

    private static dev.expo.checkpoint.Tensor tensor(String name, NDArray array) {
        return dev.expo.checkpoint.Tensor.fromFloats(name, dev.expo.checkpoint.DType.F32, array.getShape().getShape(),
                NdArrays.toFloats(array));
    }

    @Override
    public void close() {
        manager.close();
    }

    /**
     * adapter_config.json as PEFT writes it. {@code scaling} is lora_alpha / r (lora_alpha / sqrt(r) with rsLoRA);
     * rank_pattern and alpha_pattern give some modules their own r and lora_alpha, matched as PEFT matches them.
     */
    /**
     * @param dropout PEFT's lora_dropout: applied to a module's input before lora_A when training (a
     *                {@link LoraApplication} in training mode), never at inference
     */
    public record LoraConfig(int rank, double alpha, List<String> targetModules, String baseModel, boolean rsLora,
                             Map<String, Integer> rankPattern, Map<String, Double> alphaPattern, double dropout) {

        public LoraConfig {
            rankPattern = java.util.Collections.unmodifiableMap(new java.util.LinkedHashMap<>(rankPattern));
            alphaPattern = java.util.Collections.unmodifiableMap(new java.util.LinkedHashMap<>(alphaPattern));
            if (!(dropout >= 0 && dropout < 1)) {
                throw ExpoException.invalidArgument("lora_dropout", dropout, "must be in [0, 1)");
            }
        }

        public LoraConfig(int rank, double alpha, List<String> targetModules, String baseModel, boolean rsLora) {
            this(rank, alpha, targetModules, baseModel, rsLora, Map.of(), Map.of(), 0);
        }

        public LoraConfig withDropout(double p) {
            return new LoraConfig(rank, alpha, targetModules, baseModel, rsLora, rankPattern, alphaPattern, p);
        }

        /** adapter_config.json with PEFT's keys (task_type CAUSAL_LM, bias none). */
        public void write(Path dir) throws IOException {
            com.fasterxml.jackson.databind.node.ObjectNode json = JSON.createObjectNode();
            json.put("base_model_name_or_path", baseModel);
            json.put("bias", "none");
            json.put("fan_in_fan_out", false);
            json.put("inference_mode", true);
            json.put("lora_alpha", alpha);
            json.put("lora_dropout", dropout);
            json.put("peft_type", "LORA");
            json.put("r", rank);
            json.putArray("target_modules").addAll(targetModules.stream()
                    .map(com.fasterxml.jackson.databind.node.TextNode::valueOf).toList());
            json.put("task_type", "CAUSAL_LM");
            json.put("use_dora", false);
            json.put("use_rslora", rsLora);
            if (!rankPattern.isEmpty()) {
                rankPattern.forEach(json.putObject("rank_pattern")::put);
            }
            if (!alphaPattern.isEmpty()) {
                alphaPattern.forEach(json.putObject("alpha_pattern")::put);
            }
            Files.writeString(dir.resolve("adapter_config.json"),
                    JSON.writerWithDefaultPrettyPrinter().writeValueAsString(json) + "\n");
        }

        /** The default scaling, of modules no pattern names. */
        public double scaling() {
            return rsLora ? alpha / Math.sqrt(rank) : alpha / rank;
        }

        /** The scaling of the module at that path (e.g. model.layers.0.self_attn.q_proj). */
        public double scaling(String modulePath) {
            int r = rank(modulePath);
            double a = alphaPattern.getOrDefault(patternKey(modulePath), alpha);
            return rsLora ? a / Math.sqrt(r) : a / r;
        }

        /** The r of the module at that path. */
        public int rank(String modulePath) {
            return rankPattern.getOrDefault(patternKey(modulePath), rank);
        }

        /**
         * PEFT's get_pattern_key: the first key of rank_pattern, then of alpha_pattern, that is a regex matching the
         * path's end at a dot boundary ({@code (.*\.)?(key)$}); the path itself when none does. That one key then
         * gives both r and lora_alpha, as in PEFT.
         */
        private String patternKey(String modulePath) {
            for (Map<String, ?> patterns : List.of(rankPattern, alphaPattern)) {
                for (String key : patterns.keySet()) {
                    if (Pattern.compile("(.*\\.)?(" + key + ")").matcher(modulePath).matches()) {
                        return key;
                    }
                }
            }
            return modulePath;
        }

        public static LoraConfig read(Path dir) {
            Path file = dir.resolve("adapter_config.json");
            try {
                JsonNode json = JSON.readTree(Files.readString(file));
                String type = json.path("peft_type").asText("LORA");
                if (!type.equals("LORA")) {
                    throw ExpoException.failedPrecondition(file + " is a " + type + " adapter; only LORA is supported");
                }
                if (json.path("use_dora").asBoolean(false)) {
                    throw ExpoException.failedPrecondition(file + " is a DoRA adapter; only plain LoRA is supported");
                }
                if (json.path("fan_in_fan_out").asBoolean(false)) {
                    throw ExpoException.failedPrecondition(file + " uses fan_in_fan_out (GPT-2 Conv1D layers), which "
                            + "this runtime's models do not have");
                }
                // Settings whose weights or structure this runtime does not apply: refused, never ignored.
                if (!json.path("bias").asText("none").equals("none") || json.path("lora_bias").asBoolean(false)) {
                    throw ExpoException.failedPrecondition(file + " trains biases (bias \"" + json.path("bias")
                            .asText("none") + "\", lora_bias " + json.path("lora_bias").asBoolean(false) + "); only "
                            + "adapters with bias \"none\" are supported");
                }
                if (json.path("modules_to_save").isArray() && !json.get("modules_to_save").isEmpty()) {
                    throw ExpoException.failedPrecondition(file + " saves whole modules (modules_to_save "
                            + json.get("modules_to_save") + "); only LoRA weights are supported");
                }
                if (!json.path("layer_replication").isMissingNode() && !json.get("layer_replication").isNull()) {
                    throw ExpoException.failedPrecondition(file + " replicates layers (layer_replication), which "
                            + "changes the base model; not supported");
                }
                int rank = json.path("r").asInt(0);
                if (rank <= 0 || !json.has("lora_alpha")) {
                    throw ExpoException.invalidArgument(file + " needs a positive r and lora_alpha");
                }
                List<String> targets = new ArrayList<>();
                json.path("target_modules").forEach(t -> targets.add(t.asText()));
                Map<String, Integer> rankPattern = new java.util.LinkedHashMap<>();
                json.path("rank_pattern").properties().forEach(e -> {
                    if (!e.getValue().canConvertToInt() || e.getValue().asInt() <= 0) {
                        throw ExpoException.invalidArgument(file + ": rank_pattern \"" + e.getKey() + "\" must be a "
                                + "positive integer");
                    }
                    rankPattern.put(checkedPattern(file, e.getKey()), e.getValue().asInt());
                });
                Map<String, Double> alphaPattern = new java.util.LinkedHashMap<>();
                json.path("alpha_pattern").properties().forEach(e -> {
                    if (!e.getValue().isNumber()) {
                        throw ExpoException.invalidArgument(file + ": alpha_pattern \"" + e.getKey() + "\" must be a "
                                + "number");
                    }
                    alphaPattern.put(checkedPattern(file, e.getKey()), e.getValue().asDouble());
                });
                return new LoraConfig(rank, json.get("lora_alpha").asDouble(), List.copyOf(targets),
                        json.path("base_model_name_or_path").asText(null), json.path("use_rslora").asBoolean(false),
                        rankPattern, alphaPattern, json.path("lora_dropout").asDouble(0));
            } catch (NoSuchFileException e) {
                throw ExpoException.failedPrecondition(dir + " has no adapter_config.json: not a PEFT adapter");
            } catch (IOException e) {
                throw new UncheckedIOException("cannot read " + file, e);
            }
        }

        private static String checkedPattern(Path file, String key) {
            try {
                Pattern.compile(key);
                return key;
            } catch (java.util.regex.PatternSyntaxException e) {
                throw ExpoException.invalidArgument(file + ": pattern \"" + key + "\" is not a regular expression");
            }
        }
    }
}

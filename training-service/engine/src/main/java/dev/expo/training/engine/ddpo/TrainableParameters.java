package dev.expo.training.engine.ddpo;

import dev.expo.checkpoint.DType;
import dev.expo.checkpoint.SafetensorsWriter;
import dev.expo.checkpoint.Tensor;
import dev.expo.common.ExpoException;
import dev.expo.modeling.llama.LlamaConfig;
import dev.expo.modeling.lora.LoraAdapter;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * The tensors DDPO trains, as float32 master values by name (PEFT's adapter keys and {@code projector.weight} /
 * {@code .bias}) with their shapes, in insertion order; new ones initialized as torch and PEFT do.
 */
public record TrainableParameters(Map<String, float[]> values, Map<String, long[]> shapes) {

    public TrainableParameters() {
        this(new LinkedHashMap<>(), new LinkedHashMap<>());
    }

    public void put(String name, float[] tensor, long... shape) {
        values.put(name, tensor);
        shapes.put(name, shape);
    }

    /** nn.Linear's default init: kaiming_uniform(a = sqrt(5)) = U(-1/sqrt(in), 1/sqrt(in)), the bias alike. */
    public void newProjector(Random random, long hidden, long visionHidden) {
        put(DdpoTrainer.PROJECTOR_WEIGHT, uniform(random, hidden * visionHidden, 1 / Math.sqrt(visionHidden)), hidden,
                visionHidden);
        put(DdpoTrainer.PROJECTOR_BIAS, uniform(random, hidden, 1 / Math.sqrt(visionHidden)), hidden);
    }

    /**
     * A new LoRA on every target projection of every layer, as PEFT makes it: lora_A kaiming_uniform(a = sqrt(5)) =
     * U(-1/sqrt(in), 1/sqrt(in)), lora_B zeros. INVALID_ARGUMENT for a target the model has not.
     */
    public void newLora(LlamaConfig config, String modelName, List<String> targets, int rank, Random random) {
        if (targets.isEmpty()) {
            throw ExpoException.invalidArgument("lora.target_modules", targets, "match nothing");
        }
        for (int layer = 0; layer < config.numLayers(); layer++) {
            for (String target : targets) {
                int[] inOut = LoraAdapter.moduleShape(config, target);
                if (inOut == null) {
                    throw ExpoException.invalidArgument("lora.target_modules", target, "matches no module of "
                            + modelName + " (q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj)");
                }
                String module = (List.of("gate_proj", "up_proj", "down_proj").contains(target) ? "mlp."
                        : "self_attn.") + target;
                String prefix = DdpoTrainer.LORA_PREFIX + "model.layers." + layer + "." + module;
                put(prefix + ".lora_A.weight", uniform(random, (long) rank * inOut[0], 1 / Math.sqrt(inOut[0])), rank,
                        inOut[0]);
                put(prefix + ".lora_B.weight", new float[inOut[1] * rank], inOut[1], rank);
            }
        }
    }

    /** The LoRA tensors, float32 under PEFT's keys, as adapter_model.safetensors holds them. */
    public static List<Tensor> adapterTensors(Map<String, float[]> values, Map<String, long[]> shapes) {
        List<Tensor> out = new ArrayList<>();
        values.forEach((name, v) -> {
            if (name.startsWith(DdpoTrainer.LORA_PREFIX)) {
                out.add(Tensor.fromFloats(name, DType.F32, shapes.get(name), v));
            }
        });
        return out;
    }

    /** projector.safetensors: {@code weight} [llm_hidden, vision_hidden] and {@code bias}, float32. */
    public static void writeProjector(Path file, Map<String, float[]> values, Map<String, long[]> shapes)
            throws IOException {
        SafetensorsWriter.write(file, List.of(
                Tensor.fromFloats("weight", DType.F32, shapes.get(DdpoTrainer.PROJECTOR_WEIGHT),
                        values.get(DdpoTrainer.PROJECTOR_WEIGHT)),
                Tensor.fromFloats("bias", DType.F32, shapes.get(DdpoTrainer.PROJECTOR_BIAS),
                        values.get(DdpoTrainer.PROJECTOR_BIAS))));
    }

    private static float[] uniform(Random random, long count, double bound) {
        float[] values = new float[Math.toIntExact(count)];
        for (int i = 0; i < values.length; i++) {
            values[i] = (float) ((random.nextDouble() * 2 - 1) * bound);
        }
        return values;
    }
}

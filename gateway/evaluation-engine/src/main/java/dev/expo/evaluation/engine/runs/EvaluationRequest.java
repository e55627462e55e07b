package dev.expo.evaluation.engine.runs;

import com.fasterxml.jackson.annotation.JsonInclude;
import dev.expo.common.ExpoException;
import dev.expo.common.store.ModelStore;

import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * What a run evaluates: every prompt answered by every variant, each answer scored by the reward model. Stored as
 * the run's {@code request.json}, so a restarted gateway continues the same run.
 *
 * @param keepModels keep the models the run extrapolated (by default each is removed once its outputs are scored)
 * @param rewardAtLastToken score at the response's last token rather than where transformers pools (which, for a
 *                   reward model whose pad is its end-of-sequence token, is the end of the user's turn)
 * @param seed       seeds the bootstrap, and each generation whose sampling sets none: prompt i gets seed + i in
 *                   every variant, so variants are compared on the same random draws
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record EvaluationRequest(List<Prompt> prompts, List<Variant> variants, String rewardModel,
        String referenceVariant, boolean useChatTemplate, boolean keepModels, boolean rewardAtLastToken,
        int bootstrapResamples, long seed) {

    /** A prompt: AlpacaEval's {@code instruction} (and its {@code dataset}), an image for a multimodal model. */
    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record Prompt(String id, String instruction, String dataset, byte[] image) {
    }

    /**
     * One generator of outputs: an existing model, or one extrapolated for the run; optionally with a LoRA adapter and
     * its scale. {@code extrapolationSpec} and {@code sampling} are the wire messages as JSON, opaque to the engine:
     * the gateway's backends read them.
     *
     * @param extrapolatedModel the extrapolated model's name in the store (default {@code eval-<run>-<name>})
     * @param preexisting       the extrapolated model was in the store when the run was submitted: the run uses it as
     *                          it is and never removes it (set by {@link EvaluationRuns#submit})
     */
    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record Variant(String name, String model, String extrapolationSpec, String adapter, Double adapterScale,
            String sampling, String extrapolatedModel, boolean preexisting) {

        public Variant(String name, String model, String extrapolationSpec, String adapter, Double adapterScale,
                String sampling) {
            this(name, model, extrapolationSpec, adapter, adapterScale, sampling, null, false);
        }

        public boolean extrapolated() {
            return extrapolationSpec != null;
        }

        Variant asPreexisting() {
            return new Variant(name, model, extrapolationSpec, adapter, adapterScale, sampling, extrapolatedModel,
                    true);
        }
    }

    public EvaluationRequest {
        prompts = prompts == null ? List.of() : List.copyOf(prompts);
        variants = variants == null ? List.of() : List.copyOf(variants);
    }

    /** The name a variant's model has in the store: its own, or the one extrapolated for run {@code runId}. */
    public static String modelOf(String runId, Variant variant) {
        if (!variant.extrapolated()) {
            return variant.model();
        }
        return variant.extrapolatedModel() != null ? variant.extrapolatedModel() : "eval-" + runId + "-" + variant.name();
    }

    /** The request with the variants whose extrapolated model the store holds already marked as preexisting. */
    EvaluationRequest markPreexisting(String runId, java.util.function.Predicate<String> exists) {
        List<Variant> marked = variants.stream().map(v -> v.extrapolated() && exists.test(modelOf(runId, v))
                ? v.asPreexisting() : v).toList();
        return new EvaluationRequest(prompts, marked, rewardModel, referenceVariant, useChatTemplate, keepModels,
                rewardAtLastToken, bootstrapResamples, seed);
    }

    /** Checks what needs no backend; a request that fails it never becomes a run. */
    public void check() {
        if (prompts.isEmpty()) {
            throw ExpoException.invalidArgument("prompts: a run needs at least one prompt");
        }
        Set<String> ids = new HashSet<>();
        for (int i = 0; i < prompts.size(); i++) {
            Prompt prompt = prompts.get(i);
            if (prompt.id() == null || prompt.id().isEmpty()) {
                throw ExpoException.invalidArgument("prompts[" + i + "].id: every prompt needs an id");
            }
            if (!ids.add(prompt.id())) {
                throw ExpoException.invalidArgument("prompts[" + i + "].id", prompt.id(), "ids must be unique");
            }
            if (prompt.instruction() == null || prompt.instruction().isBlank()) {
                throw ExpoException.invalidArgument("prompts[" + i + "].instruction: prompt " + prompt.id()
                        + " has no instruction");
            }
        }
        if (variants.isEmpty()) {
            throw ExpoException.invalidArgument("variants: a run needs at least one variant");
        }
        Set<String> names = new HashSet<>();
        for (int i = 0; i < variants.size(); i++) {
            Variant variant = variants.get(i);
            String field = "variants[" + i + "]";
            if (variant.name() == null || !variant.name().matches("[A-Za-z0-9][A-Za-z0-9._-]{0,63}")) {
                throw ExpoException.invalidArgument(field + ".name", variant.name(), "a name of letters, digits,"
                        + " '.', '_' and '-' (up to 64; it names a folder of the run)");
            }
            if (!names.add(variant.name())) {
                throw ExpoException.invalidArgument(field + ".name", variant.name(), "variant names must be unique");
            }
            if ((variant.model() == null || variant.model().isEmpty()) == (variant.extrapolationSpec() == null)) {
                throw ExpoException.invalidArgument(field + ": variant " + variant.name()
                        + " needs exactly one source, a model or an extrapolation");
            }
            if (variant.model() != null && !variant.model().isEmpty()) {
                ModelStore.checkName(field + ".model", variant.model());
            }
            if (variant.extrapolatedModel() != null) {
                ModelStore.checkName(field + ".extrapolated_model", variant.extrapolatedModel());
                if (!variant.extrapolated()) {
                    throw ExpoException.invalidArgument(field + ".extrapolated_model: variant " + variant.name()
                            + " names an extrapolated model but has no extrapolation");
                }
            }
            if (variant.adapterScale() != null && !Double.isFinite(variant.adapterScale())) {
                throw ExpoException.invalidArgument(field + ".adapter_scale", variant.adapterScale(),
                        "must be a finite number");
            }
        }
        if (rewardModel == null || rewardModel.isEmpty()) {
            throw ExpoException.invalidArgument("reward_model: a run needs a reward model to score outputs");
        }
        ModelStore.checkName("reward_model", rewardModel);
        if (!names.contains(referenceVariant)) {
            throw ExpoException.invalidArgument("reference_variant", referenceVariant, "must be one of the variants "
                    + variants.stream().map(Variant::name).toList());
        }
        if (bootstrapResamples < 1) {
            throw ExpoException.invalidArgument("bootstrap_resamples", bootstrapResamples, "must be at least 1");
        }
    }
}

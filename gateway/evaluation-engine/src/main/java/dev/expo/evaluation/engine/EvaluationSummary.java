package dev.expo.evaluation.engine;

import dev.expo.evaluation.engine.stats.MeanInterval;
import dev.expo.evaluation.engine.stats.PairedComparison;
import dev.expo.evaluation.engine.stats.Repetition;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** The summary of a run's scored outputs, variants in the run's order; recomputable from its results.jsonl. */
public record EvaluationSummary(String referenceVariant, PairedComparison.Bootstrap bootstrap,
        List<VariantSummary> variants) {

    public EvaluationSummary {
        variants = List.copyOf(variants);
    }

    /** The variant with the highest mean reward (the official ExPO selection), the first of equals. */
    public VariantSummary best() {
        VariantSummary best = variants.getFirst();
        for (VariantSummary variant : variants) {
            if (variant.reward().mean() > best.reward().mean()) {
                best = variant;
            }
        }
        return best;
    }

    /**
     * Summarizes outputs of the given variants, whatever their order; comparisons pair each variant's outputs with
     * the reference's on the prompts both answered.
     */
    public static EvaluationSummary of(List<ScoredOutput> outputs, List<String> variantOrder, String referenceVariant,
            PairedComparison.Bootstrap bootstrap) {
        if (!variantOrder.contains(referenceVariant)) {
            throw new IllegalArgumentException("reference variant '" + referenceVariant + "' is not among the variants "
                    + variantOrder);
        }
        Map<String, Map<String, ScoredOutput>> byVariant = new LinkedHashMap<>();
        variantOrder.forEach(name -> byVariant.put(name, new LinkedHashMap<>()));
        for (ScoredOutput output : outputs) {
            Map<String, ScoredOutput> prompts = byVariant.get(output.variant());
            if (prompts == null) {
                throw new IllegalArgumentException("output of prompt " + output.promptId() + " names variant '"
                        + output.variant() + "', not one of " + variantOrder);
            }
            if (prompts.putIfAbsent(output.promptId(), output) != null) {
                throw new IllegalArgumentException("variant '" + output.variant() + "' answered prompt "
                        + output.promptId() + " twice");
            }
        }
        Map<String, ScoredOutput> reference = byVariant.get(referenceVariant);
        List<VariantSummary> summaries = new ArrayList<>();
        for (String name : variantOrder) {
            Map<String, ScoredOutput> own = byVariant.get(name);
            if (own.isEmpty()) {
                throw new IllegalArgumentException("variant '" + name + "' has no scored outputs");
            }
            summaries.add(summarize(name, own, reference, bootstrap));
        }
        return new EvaluationSummary(referenceVariant, bootstrap, summaries);
    }

    private static VariantSummary summarize(String name, Map<String, ScoredOutput> own,
            Map<String, ScoredOutput> reference, PairedComparison.Bootstrap bootstrap) {
        // In prompt-id order, not the order outputs were scored in: the summary (to the bit, bootstrap draws
        // included) is a function of the outputs alone, so results.jsonl recomputes it exactly.
        List<ScoredOutput> list = own.values().stream().sorted(java.util.Comparator.comparing(ScoredOutput::promptId))
                .toList();
        int n = list.size();
        double[] rewards = new double[n];
        double tokens = 0;
        double characters = 0;
        int atLimit = 0;
        double seqRep = 0;
        int repeating = 0;
        for (int i = 0; i < n; i++) {
            ScoredOutput output = list.get(i);
            rewards[i] = output.reward();
            tokens += output.generatedTokens();
            characters += output.characters();
            atLimit += output.hitLengthLimit() ? 1 : 0;
            seqRep += output.seqRep();
            repeating += Repetition.isRepeating(output.seqRep()) ? 1 : 0;
        }
        List<String> paired = list.stream().map(ScoredOutput::promptId).filter(reference::containsKey).toList();
        PairedComparison comparison = null;
        if (!paired.isEmpty()) {
            int m = paired.size();
            double[] mine = new double[m];
            double[] theirs = new double[m];
            int[] myLengths = new int[m];
            int[] theirLengths = new int[m];
            for (int i = 0; i < m; i++) {
                ScoredOutput a = own.get(paired.get(i));
                ScoredOutput b = reference.get(paired.get(i));
                mine[i] = a.reward();
                theirs[i] = b.reward();
                myLengths[i] = a.characters();
                theirLengths[i] = b.characters();
            }
            comparison = PairedComparison.of(mine, theirs, myLengths, theirLengths, bootstrap);
        }
        return new VariantSummary(name, n, MeanInterval.of(rewards), comparison, tokens / n, characters / n,
                atLimit / (double) n, seqRep / n, repeating / (double) n);
    }
}

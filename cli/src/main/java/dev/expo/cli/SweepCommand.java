package dev.expo.cli;

import dev.expo.api.v1.AlphaSchedule;
import dev.expo.api.v1.EvaluationPrompt;
import dev.expo.api.v1.EvaluationVariant;
import dev.expo.api.v1.ExtrapolationSpec;
import dev.expo.api.v1.RunEvaluationRequest;
import dev.expo.api.v1.SamplingParams;
import io.grpc.ManagedChannel;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

/**
 * {@code expo sweep}: ExPO's "which alpha?" in one call. Each alpha becomes a variant: the pair extrapolated at that
 * alpha (alpha 0 is the aligned model itself), or for a LoRA-trained model its adapter at scale 1 + alpha with no
 * checkpoint written. All are generated on the prompts, scored by the reward model and compared with alpha 0; the
 * best alpha is the one with the highest mean reward, as the official ExPO selection picks it.
 */
@Command(name = "sweep", sortOptions = false,
        description = {"Sweep ExPO's alpha: extrapolate (or scale an adapter), generate, score with a reward model, "
                + "and report the best alpha with its interval and LC win rate against alpha 0.",
            "Extrapolated models are named <aligned>-expo-<alpha>; one already in the store is used as it is."})
public class SweepCommand implements Callable<Integer> {

    /** Log-spaced over the paper's best alphas (0.3 to 25), with 0 as the reference. */
    static final List<Double> DEFAULT_ALPHAS = List.of(0.0, 0.3, 1.0, 3.0, 10.0, 25.0);

    @ArgGroup(exclusive = true, multiplicity = "1")
    Source source;

    static class Source {
        @ArgGroup(exclusive = false)
        Pair pair;

        @ArgGroup(exclusive = false)
        Lora lora;
    }

    static class Pair {
        @Option(names = "--base", required = true, paramLabel = "SFT", description = "The SFT model.")
        String base;

        @Option(names = "--aligned", required = true, paramLabel = "DPO", description = "The aligned (DPO) model.")
        String aligned;
    }

    static class Lora {
        @Option(names = "--model", required = true, paramLabel = "NAME", description = "The model the adapter is on.")
        String model;

        @Option(names = "--adapter", required = true, paramLabel = "NAME",
                description = "A LoRA adapter (the aligned delta): alpha a runs it at scale 1 + a.")
        String adapter;
    }

    @Option(names = "--alphas", split = ",", paramLabel = "A,A", description = "The grid (default "
            + "0,0.3,1,3,10,25); 0 is added as the reference if missing.")
    List<Double> alphas;

    @Mixin
    EvalOptions options;

    @Override
    public Integer call() throws InterruptedException {
        List<Double> grid = grid(alphas == null ? DEFAULT_ALPHAS : alphas);
        List<EvaluationPrompt> prompts = options.readPrompts();
        SamplingParams sampling = options.sampling();
        RunEvaluationRequest.Builder request = options.request(prompts);
        for (double alpha : grid) {
            request.addVariants(variant(alpha, sampling));
        }
        request.setReferenceVariant(name(0));
        ManagedChannel channel = GatewayOptions.open();
        try {
            return new EvalSession(channel, options.json, options.out, prompts).start(request.build(),
                    options.detach);
        } finally {
            GatewayOptions.close(channel);
        }
    }

    static List<Double> grid(List<Double> alphas) {
        List<Double> grid = new ArrayList<>();
        grid.add(0.0);
        for (double alpha : alphas) {
            if (!Double.isFinite(alpha)) {
                throw new CliException("--alphas: " + alpha + " is not a finite number", 2);
            }
            if (grid.contains(alpha)) {
                if (alpha != 0) {
                    throw new CliException("--alphas: " + plain(alpha) + " is given twice", 2);
                }
                continue;
            }
            grid.add(alpha);
        }
        grid.sort(Double::compare);
        return grid;
    }

    private EvaluationVariant variant(double alpha, SamplingParams sampling) {
        EvaluationVariant.Builder variant = EvaluationVariant.newBuilder().setName(name(alpha)).setSampling(sampling);
        if (source.lora != null) {
            return variant.setModel(source.lora.model).setAdapter(source.lora.adapter).setAdapterScale(1 + alpha)
                    .build();
        }
        if (alpha == 0) {
            return variant.setModel(source.pair.aligned).build();   // theta_dpo + 0 * (...) is the aligned model
        }
        return variant.setExtrapolation(ExtrapolationSpec.newBuilder().setBaseModel(source.pair.base)
                        .setAlignedModel(source.pair.aligned).setSchedule(AlphaSchedule.newBuilder().setAlpha(alpha)))
                .setExtrapolatedModel(source.pair.aligned + "-expo-" + plain(alpha)).build();
    }

    static String name(double alpha) {
        return "alpha-" + plain(alpha);
    }

    /** 0.5 -> "0.5", 2.0 -> "2", -1 -> "-1": as a person writes it, and a valid store name. */
    static String plain(double alpha) {
        return new BigDecimal(Double.toString(alpha)).stripTrailingZeros().toPlainString();
    }
}

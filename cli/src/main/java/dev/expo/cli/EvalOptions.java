package dev.expo.cli;

import dev.expo.api.v1.EvaluationPrompt;
import dev.expo.api.v1.RewardPosition;
import dev.expo.api.v1.RunEvaluationRequest;
import dev.expo.api.v1.SamplingParams;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.List;

/** What every evaluation (a run, a sweep) takes: the prompts, the judge, sampling, and where the results go. */
public class EvalOptions {

    @Option(names = "--prompts", required = true, paramLabel = "FILE",
            description = "AlpacaEval's JSON list of {\"instruction\", ...} (or JSONL); optional \"id\", \"dataset\", "
                    + "\"image\" (a file relative to FILE).")
    Path prompts;

    @Option(names = "--reward-model", required = true, paramLabel = "NAME",
            description = "The judge: a reward model of the store (*ForSequenceClassification, one label).")
    String rewardModel;

    @Option(names = "--last-token", description = "Read the reward at the response's last token instead of where "
            + "transformers pools (needed for a reward model whose pad is </s>, e.g. zephyr's).")
    boolean lastToken;

    @Option(names = "--max-new-tokens", paramLabel = "N", description = "Tokens per output (default: the model's "
            + "generation_config, else the server's).")
    Integer maxNewTokens;

    @Option(names = "--temperature", paramLabel = "T", description = "0 = greedy (default: the model's own).")
    Float temperature;

    @Option(names = "--top-p", paramLabel = "P") Float topP;

    @Option(names = "--top-k", paramLabel = "K") Integer topK;

    @Option(names = "--repetition-penalty", paramLabel = "R") Float repetitionPenalty;

    @Option(names = "--seed", paramLabel = "N", description = "Prompt i is sampled with seed N + i in every variant; "
            + "also seeds the bootstrap (default 0).")
    long seed;

    @Option(names = "--no-chat-template", description = "Send instructions as plain text, not a user turn.")
    boolean noChatTemplate;

    @Option(names = "--bootstrap", paramLabel = "N", description = "Bootstrap resamples of the intervals (default "
            + "2000).")
    Integer bootstrap;

    @Option(names = "--keep-models", description = "Keep the models the run extrapolates (default: removed once "
            + "scored).")
    boolean keepModels;

    @Option(names = "--out", paramLabel = "DIR", description = "Also write results.jsonl, summary.json, report.html, "
            + "report.svg and <variant>/model_outputs.json here.")
    Path out;

    @Option(names = "--detach", description = "Print the run's id and return at once (bin/expo eval watch ID "
            + "follows it).")
    boolean detach;

    @Option(names = "--json", description = "Print the finished run (with its summary) as one JSON object.")
    boolean json;

    List<EvaluationPrompt> readPrompts() {
        return EvalPrompts.read(prompts);
    }

    SamplingParams sampling() {
        SamplingParams.Builder sampling = SamplingParams.newBuilder();
        if (maxNewTokens != null) {
            if (maxNewTokens < 1) {
                throw new CliException("--max-new-tokens must be at least 1", 2);
            }
            sampling.setMaxNewTokens(maxNewTokens);
        }
        if (temperature != null) {
            sampling.setTemperature(temperature);
        }
        if (topP != null) {
            sampling.setTopP(topP);
        }
        if (topK != null) {
            sampling.setTopK(topK);
        }
        if (repetitionPenalty != null) {
            sampling.setRepetitionPenalty(repetitionPenalty);
        }
        return sampling.build();
    }

    /** The request's common part; the caller adds the variants and the reference. */
    RunEvaluationRequest.Builder request(List<EvaluationPrompt> prompts) {
        if (bootstrap != null && bootstrap < 1) {
            throw new CliException("--bootstrap must be at least 1", 2);
        }
        RunEvaluationRequest.Builder request = RunEvaluationRequest.newBuilder().addAllPrompts(prompts)
                .setRewardModel(rewardModel).setUseChatTemplate(!noChatTemplate).setKeepModels(keepModels)
                .setSeed(seed).setRewardPosition(lastToken ? RewardPosition.REWARD_POSITION_LAST_TOKEN
                        : RewardPosition.REWARD_POSITION_HF);
        if (bootstrap != null) {
            request.setBootstrapResamples(bootstrap);
        }
        return request;
    }
}

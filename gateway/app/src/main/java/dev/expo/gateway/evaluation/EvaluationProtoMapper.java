package dev.expo.gateway.evaluation;

import dev.expo.api.v1.ConfidenceInterval;
import dev.expo.api.v1.EvaluationEvent;
import dev.expo.api.v1.EvaluationOutput;
import dev.expo.api.v1.EvaluationProgress;
import dev.expo.api.v1.EvaluationPrompt;
import dev.expo.api.v1.EvaluationVariant;
import dev.expo.api.v1.JobError;
import dev.expo.api.v1.JobState;
import dev.expo.api.v1.RewardPosition;
import dev.expo.api.v1.RunEvaluationRequest;
import dev.expo.common.ExpoException;
import dev.expo.evaluation.engine.EvaluationSummary;
import dev.expo.evaluation.engine.ScoredOutput;
import dev.expo.evaluation.engine.VariantSummary;
import dev.expo.evaluation.engine.runs.EvaluationRequest;
import dev.expo.evaluation.engine.runs.EvaluationRun;
import dev.expo.evaluation.engine.stats.PairedComparison;
import dev.expo.service.GrpcErrors;
import dev.expo.service.Timestamps;

import java.util.ArrayList;
import java.util.List;

/** expo.v1 evaluation messages to and from the evaluation engine's types. */
public final class EvaluationProtoMapper {

    static final int DEFAULT_RESAMPLES = PairedComparison.Bootstrap.DEFAULT.resamples();

    private EvaluationProtoMapper() {
    }

    public static EvaluationRequest toRequest(RunEvaluationRequest request) {
        List<EvaluationRequest.Prompt> prompts = new ArrayList<>();
        for (int i = 0; i < request.getPromptsCount(); i++) {
            EvaluationPrompt prompt = request.getPrompts(i);
            prompts.add(new EvaluationRequest.Prompt(prompt.getId().isEmpty() ? String.valueOf(i) : prompt.getId(),
                    prompt.getInstruction(), prompt.getDataset().isEmpty() ? null : prompt.getDataset(),
                    prompt.getImage().isEmpty() ? null : prompt.getImage().toByteArray()));
        }
        List<EvaluationRequest.Variant> variants = new ArrayList<>();
        for (EvaluationVariant variant : request.getVariantsList()) {
            String spec = variant.hasExtrapolation() ? GrpcEvaluationBackends.toJson(variant.getExtrapolation()) : null;
            variants.add(new EvaluationRequest.Variant(variant.getName(),
                    variant.hasExtrapolation() ? null : variant.getModel(), spec,
                    variant.getAdapter().isEmpty() ? null : variant.getAdapter(),
                    variant.hasAdapterScale() ? variant.getAdapterScale() : null,
                    variant.hasSampling() ? GrpcEvaluationBackends.toJson(variant.getSampling()) : null,
                    variant.getExtrapolatedModel().isEmpty() ? null : variant.getExtrapolatedModel(), false));
        }
        if (request.getBootstrapResamples() < 0) {
            throw ExpoException.invalidArgument("bootstrap_resamples", request.getBootstrapResamples(),
                    "must be positive (0 takes the default, " + DEFAULT_RESAMPLES + ")");
        }
        return new EvaluationRequest(prompts, variants, request.getRewardModel(), request.getReferenceVariant(),
                !request.hasUseChatTemplate() || request.getUseChatTemplate(), request.getKeepModels(),
                request.getRewardPosition() == RewardPosition.REWARD_POSITION_LAST_TOKEN,
                request.getBootstrapResamples() == 0 ? DEFAULT_RESAMPLES : request.getBootstrapResamples(),
                request.hasSeed() ? request.getSeed() : 0);
    }

    public static dev.expo.api.v1.EvaluationRun toProto(EvaluationRun run) {
        EvaluationRequest request = run.request();
        dev.expo.api.v1.EvaluationRun.Builder out = dev.expo.api.v1.EvaluationRun.newBuilder()
                .setRunId(run.id())
                .setState(toProto(run.state()))
                .setProgress(progress(run))
                .setCreateTime(Timestamps.of(run.createTime()))
                .setFolder(run.dir().toString())
                .setReferenceVariant(request.referenceVariant())
                .setRewardModel(request.rewardModel())
                .setPrompts(request.prompts().size());
        request.variants().forEach(v -> out.addVariants(v.name()));
        if (run.startTime() != null) {
            out.setStartTime(Timestamps.of(run.startTime()));
        }
        if (run.endTime() != null) {
            out.setEndTime(Timestamps.of(run.endTime()));
        }
        if (run.failure() != null) {
            int code = run.failure().kind() == null ? io.grpc.Status.Code.INTERNAL.value()
                    : GrpcErrors.codeOf(run.failure().kind()).getCode().value();
            out.setError(JobError.newBuilder().setCode(code).setMessage(run.failure().message()));
        }
        if (run.summary() != null) {
            out.setSummary(toProto(run.summary()));
        }
        return out.build();
    }

    public static EvaluationProgress progress(EvaluationRun run) {
        return EvaluationProgress.newBuilder().setOutputsDone(run.outputsDone()).setOutputsTotal(run.outputsTotal())
                .setPhase(run.phase()).build();
    }

    public static EvaluationEvent runEvent(EvaluationRun run) {
        return EvaluationEvent.newBuilder().setRunId(run.id()).setRun(toProto(run)).build();
    }

    public static EvaluationOutput toProto(ScoredOutput output) {
        return EvaluationOutput.newBuilder()
                .setPromptId(output.promptId())
                .setVariant(output.variant())
                .setInstruction(output.instruction())
                .setOutput(output.output())
                .setReward(output.reward())
                .setGeneratedTokens(output.generatedTokens())
                .setFinishReason(output.finishReason())
                .setSeqRep4(output.seqRep())
                .build();
    }

    public static dev.expo.api.v1.EvaluationSummary toProto(EvaluationSummary summary) {
        dev.expo.api.v1.EvaluationSummary.Builder out = dev.expo.api.v1.EvaluationSummary.newBuilder()
                .setReferenceVariant(summary.referenceVariant())
                .setBestVariant(summary.best().variant())
                .setBootstrapResamples(summary.bootstrap().resamples())
                .setSeed(summary.bootstrap().seed());
        for (VariantSummary v : summary.variants()) {
            dev.expo.api.v1.VariantSummary.Builder variant = dev.expo.api.v1.VariantSummary.newBuilder()
                    .setVariant(v.variant())
                    .setOutputs(v.outputs())
                    .setMeanReward(v.reward().mean())
                    .setRewardStandardError(v.reward().standardError())
                    .setRewardInterval(interval(v.reward().lower(), v.reward().upper()))
                    .setMeanGeneratedTokens(v.meanGeneratedTokens())
                    .setMeanCharacters(v.meanCharacters())
                    .setLengthLimitShare(v.lengthLimitShare())
                    .setRepeatingShare(v.repeatingShare())
                    .setMeanSeqRep4(v.meanSeqRep());
            PairedComparison c = v.againstReference();
            if (c != null) {
                variant.setPairedPrompts(c.count())
                        .setWins(c.wins())
                        .setLosses(c.losses())
                        .setTies(c.ties())
                        .setWinRate(c.winRate())
                        .setWinRateStandardError(c.standardError())
                        .setWinRateInterval(interval(c.winRateInterval().lower(), c.winRateInterval().upper()))
                        .setLengthControlledWinRate(c.lengthControlled().winRate())
                        .setLengthControlledWinRateInterval(interval(c.lengthControlledInterval().lower(),
                                c.lengthControlledInterval().upper()));
            }
            out.addVariants(variant);
        }
        return out.build();
    }

    private static ConfidenceInterval interval(double lower, double upper) {
        return ConfidenceInterval.newBuilder().setLower(lower).setUpper(upper).build();
    }

    public static JobState toProto(EvaluationRun.State state) {
        return switch (state) {
            case QUEUED -> JobState.JOB_STATE_QUEUED;
            case RUNNING -> JobState.JOB_STATE_RUNNING;
            case SUCCEEDED -> JobState.JOB_STATE_SUCCEEDED;
            case FAILED -> JobState.JOB_STATE_FAILED;
            case CANCELLED -> JobState.JOB_STATE_CANCELLED;
        };
    }
}

package dev.expo.training.grpc;

import com.google.protobuf.Timestamp;
import dev.expo.api.v1.DdpoSettings;
import dev.expo.api.v1.JobError;
import dev.expo.api.v1.JobState;
import dev.expo.api.v1.LoraSettings;
import dev.expo.api.v1.Precision;
import dev.expo.api.v1.StartTrainingRequest;
import dev.expo.api.v1.TrainingEvent;
import dev.expo.api.v1.TrainingStepMetrics;
import dev.expo.common.ExpoException;
import dev.expo.common.store.ModelStore;
import dev.expo.service.GrpcErrors;
import dev.expo.training.engine.ddpo.DdpoTrainer;
import dev.expo.training.engine.jobs.TrainingJob;
import dev.expo.training.engine.jobs.TrainingRequest;
import dev.expo.training.engine.optim.LearningRateSchedule;
import io.grpc.Status;

import java.time.Instant;
import java.util.List;
import java.util.Locale;

/** expo.v1 training messages to and from the engine's records, with the seed's defaults for what is unset. */
final class TrainingProtoMapper {

    static final double DEFAULT_LR = 2e-6;
    static final int DEFAULT_EPOCHS = 3;
    static final int DEFAULT_GLOBAL_BATCH = 8;
    static final double DEFAULT_WEIGHT_DECAY = 0.01;
    static final double DEFAULT_WARMUP = 0.03;
    static final double DEFAULT_BETA = 0.1;
    static final double DEFAULT_GAMMA = 2.0;
    static final double DEFAULT_MAX_GRAD_NORM = 1.0;
    static final int DEFAULT_LORA_RANK = 8;
    static final double DEFAULT_LORA_ALPHA = 16;
    static final List<String> DEFAULT_LORA_TARGETS = List.of("q_proj", "v_proj");
    static final int DEFAULT_VISION_LAYER = -2;

    private TrainingProtoMapper() {
    }

    static TrainingRequest toRequest(StartTrainingRequest request) {
        require("language_model", request.getLanguageModel());
        require("vision_tower", request.getVisionTower());
        require("dataset", request.getDataset());
        require("output_model", request.getOutputModel());
        ModelStore.checkName("output_model", request.getOutputModel());
        LoraSettings lora = request.getLora();
        DdpoSettings h = request.getHyperparameters();
        int global = h.getGlobalBatchSize() == 0 ? DEFAULT_GLOBAL_BATCH : h.getGlobalBatchSize();
        int micro = h.getMicroBatchSize() != 0 ? h.getMicroBatchSize() : global % 2 == 0 ? 2 : 1;
        return new TrainingRequest(request.getLanguageModel(), request.getVisionTower(),
                blankToNull(request.getProjector()), blankToNull(request.getAdapter()), request.getDataset(),
                request.getOutputModel(),
                lora.getRank() == 0 ? DEFAULT_LORA_RANK : lora.getRank(),
                lora.getAlpha() == 0 ? DEFAULT_LORA_ALPHA : lora.getAlpha(),
                lora.getTargetModulesCount() == 0 ? DEFAULT_LORA_TARGETS : lora.getTargetModulesList(),
                lora.getDropout(),
                h.getLearningRate() == 0 ? DEFAULT_LR : h.getLearningRate(),
                h.getEpochs() == 0 ? DEFAULT_EPOCHS : h.getEpochs(),
                h.getMaxSteps(), global, micro,
                h.hasWeightDecay() ? h.getWeightDecay() : DEFAULT_WEIGHT_DECAY,
                h.hasWarmupRatio() ? h.getWarmupRatio() : DEFAULT_WARMUP,
                schedule(h.getLrSchedule()),
                h.getBeta() == 0 ? DEFAULT_BETA : h.getBeta(),
                h.getGamma() == 0 ? DEFAULT_GAMMA : h.getGamma(),
                h.getUseAverage(),
                h.hasMaxGradNorm() ? h.getMaxGradNorm() : DEFAULT_MAX_GRAD_NORM,
                !h.getNoShuffle(), h.getSeed(), h.getSaveEvery(),
                request.hasVisionLayer() ? request.getVisionLayer() : DEFAULT_VISION_LAYER,
                request.getPrecision() == Precision.PRECISION_FP16_MIXED);
    }

    private static void require(String field, String value) {
        if (value.isBlank()) {
            throw ExpoException.invalidArgument(field, "(empty)", "is required");
        }
    }

    private static String blankToNull(String value) {
        return value.isBlank() ? null : value;
    }

    static LearningRateSchedule.Kind schedule(String name) {
        if (name.isBlank()) {
            return LearningRateSchedule.Kind.LINEAR;
        }
        try {
            return LearningRateSchedule.Kind.valueOf(name.trim().toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw ExpoException.invalidArgument("lr_schedule", name, "must be linear, cosine or constant");
        }
    }

    /** The request as the job runs it: every default filled in. */
    static StartTrainingRequest toProto(TrainingRequest r) {
        StartTrainingRequest.Builder out = StartTrainingRequest.newBuilder()
                .setLanguageModel(r.languageModel())
                .setVisionTower(r.visionTower())
                .setDataset(r.dataset())
                .setOutputModel(r.outputModel())
                .setLora(LoraSettings.newBuilder().setRank(r.loraRank()).setAlpha(r.loraAlpha())
                        .addAllTargetModules(r.loraTargets()).setDropout(r.loraDropout()))
                .setHyperparameters(DdpoSettings.newBuilder()
                        .setLearningRate(r.learningRate()).setEpochs(r.epochs()).setMaxSteps(r.maxSteps())
                        .setGlobalBatchSize(r.globalBatch()).setMicroBatchSize(r.microBatch())
                        .setWeightDecay(r.weightDecay()).setWarmupRatio(r.warmupRatio())
                        .setLrSchedule(r.schedule().name().toLowerCase(Locale.ROOT))
                        .setBeta(r.beta()).setGamma(r.gamma()).setUseAverage(r.average())
                        .setMaxGradNorm(r.maxGradNorm()).setNoShuffle(!r.shuffle()).setSeed(r.seed())
                        .setSaveEvery(r.saveEvery()))
                .setPrecision(r.mixedPrecision() ? Precision.PRECISION_FP16_MIXED : Precision.PRECISION_FP32)
                .setVisionLayer(r.visionLayer());
        if (r.projector() != null) {
            out.setProjector(r.projector());
        }
        if (r.adapter() != null) {
            out.setAdapter(r.adapter());
        }
        return out.build();
    }

    static dev.expo.api.v1.TrainingJob toProto(TrainingJob job) {
        dev.expo.api.v1.TrainingJob.Builder out = dev.expo.api.v1.TrainingJob.newBuilder()
                .setJobId(job.id())
                .setState(toProto(job.state()))
                .setRequest(toProto(job.request()))
                .setCreateTime(toProto(job.createTime()))
                .addAllCheckpoints(job.checkpoints())
                .setFolder(job.dir().toString());
        TrainingJob.Step latest = job.latest();
        if (latest != null) {
            out.setLatest(toProto(latest));
        }
        if (job.failure() != null) {
            Status status = job.failure().kind() == null ? Status.INTERNAL : GrpcErrors.codeOf(job.failure().kind());
            out.setError(JobError.newBuilder().setCode(status.getCode().value()).setMessage(job.failure().message()));
        }
        if (job.startTime() != null) {
            out.setStartTime(toProto(job.startTime()));
        }
        if (job.endTime() != null) {
            out.setEndTime(toProto(job.endTime()));
        }
        return out.build();
    }

    static TrainingStepMetrics toProto(TrainingJob.Step step) {
        DdpoTrainer.StepMetrics m = step.metrics();
        double seconds = m.seconds() > 0 ? m.seconds() : Double.NaN;
        return TrainingStepMetrics.newBuilder()
                .setStep(m.step())
                .setTotalSteps(step.totalSteps())
                .setEpoch(step.epoch())
                .setLoss(m.loss())
                .setLearningRate(m.learningRate())
                .setChosenReward(m.chosenReward())
                .setRejectedReward(m.rejectedReward())
                .setRewardAccuracy(m.accuracy())
                .setMargin(m.margin())
                .setGradNorm(Double.isNaN(m.gradNorm()) ? 0 : m.gradNorm())
                .setPolicyChosenLogp(m.policyChosen())
                .setPolicyRejectedLogp(m.policyRejected())
                .setReferenceChosenLogp(m.referenceChosen())
                .setReferenceRejectedLogp(m.referenceRejected())
                .setSamplesPerSecond(Double.isNaN(seconds) ? 0 : m.pairs() / seconds)
                .setTokensPerSecond(Double.isNaN(seconds) ? 0 : m.tokens() / seconds)
                .setLossScale(m.lossScale())
                .setSkipped(m.skipped())
                .setMicroBatchSize(m.microBatch())
                .setMicroBatchHalvings(m.halvings())
                .setTime(toProto(step.time()))
                .build();
    }

    static TrainingEvent stepEvent(TrainingJob job, TrainingJob.Step step) {
        return TrainingEvent.newBuilder().setJobId(job.id()).setStep(toProto(step)).build();
    }

    static TrainingEvent jobEvent(TrainingJob job) {
        return TrainingEvent.newBuilder().setJobId(job.id()).setJob(toProto(job)).build();
    }

    static JobState toProto(TrainingJob.State state) {
        return switch (state) {
            case QUEUED -> JobState.JOB_STATE_QUEUED;
            case RUNNING -> JobState.JOB_STATE_RUNNING;
            case SUCCEEDED -> JobState.JOB_STATE_SUCCEEDED;
            case FAILED -> JobState.JOB_STATE_FAILED;
            case CANCELLED -> JobState.JOB_STATE_CANCELLED;
        };
    }

    static Timestamp toProto(Instant instant) {
        return dev.expo.service.Timestamps.of(instant);
    }
}

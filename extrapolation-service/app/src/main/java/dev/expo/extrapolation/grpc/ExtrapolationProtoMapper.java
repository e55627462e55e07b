package dev.expo.extrapolation.grpc;

import com.google.protobuf.Timestamp;
import dev.expo.api.v1.ExtrapolateEvent;
import dev.expo.api.v1.ExtrapolateRequest;
import dev.expo.api.v1.ExtrapolationPhase;
import dev.expo.api.v1.JobError;
import dev.expo.api.v1.JobState;
import dev.expo.api.v1.LayerGroups;
import dev.expo.api.v1.LinearRamp;
import dev.expo.api.v1.PerLayerAlphas;
import dev.expo.api.v1.NonFiniteTensor;
import dev.expo.api.v1.PlanResponse;
import dev.expo.api.v1.TensorAlpha;
import dev.expo.common.ExpoException;
import dev.expo.extrapolation.engine.ExtrapolationPlan;
import dev.expo.extrapolation.engine.ExtrapolationProgress;
import dev.expo.extrapolation.engine.ExtrapolationResult;
import dev.expo.extrapolation.engine.ExtrapolationSpec;
import dev.expo.extrapolation.engine.PlannedTensor;
import dev.expo.extrapolation.engine.jobs.ExtrapolationJob;
import dev.expo.extrapolation.engine.jobs.ExtrapolationRequest;
import dev.expo.extrapolation.engine.schedule.AlphaSchedule;
import dev.expo.extrapolation.engine.schedule.LayerSchedule;
import dev.expo.extrapolation.engine.schedule.ScheduleYaml;
import dev.expo.extrapolation.engine.schedule.TensorRule;
import dev.expo.service.DtypeMapper;
import dev.expo.service.GrpcErrors;
import io.grpc.Status;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;

/** expo.v1 extrapolation messages to and from engine records. */
final class ExtrapolationProtoMapper {

    private ExtrapolationProtoMapper() {
    }

    static ExtrapolationSpec toSpec(dev.expo.api.v1.ExtrapolationSpec spec) {
        if (!spec.hasSchedule() && !spec.hasScheduleYaml()) {
            throw ExpoException.invalidArgument("spec.schedule", "(unset)", "give an alpha schedule or "
                    + "schedule_yaml, e.g. alpha 12 or layer_groups [5, 10, 15]");
        }
        AlphaSchedule schedule = spec.hasScheduleYaml() ? ScheduleYaml.parse(spec.getScheduleYaml())
                : toSchedule(spec.getSchedule());
        return new ExtrapolationSpec(spec.getBaseModel(), spec.getAlignedModel(), schedule,
                DtypeMapper.fromProto(spec.getOutputDtype(), "output_dtype"));
    }

    static AlphaSchedule toSchedule(dev.expo.api.v1.AlphaSchedule schedule) {
        LayerSchedule layers = switch (schedule.getLayersCase()) {
            case ALPHA -> new LayerSchedule.Uniform(schedule.getAlpha());
            case LAYER_GROUPS -> new LayerSchedule.LayerGroups(schedule.getLayerGroups().getAlphasList());
            case PER_LAYER -> new LayerSchedule.PerLayer(schedule.getPerLayer().getAlphasList());
            case LINEAR_RAMP -> new LayerSchedule.LinearRamp(schedule.getLinearRamp().getFirst(),
                    schedule.getLinearRamp().getLast());
            case LAYERS_NOT_SET -> null;
        };
        List<TensorRule> rules = new ArrayList<>();
        for (dev.expo.api.v1.TensorRule rule : schedule.getRulesList()) {
            rules.add(switch (rule.getPatternCase()) {
                case GLOB -> TensorRule.glob(rule.getGlob(), rule.getAlpha());
                case REGEX -> TensorRule.regex(rule.getRegex(), rule.getAlpha());
                case PATTERN_NOT_SET -> throw ExpoException.invalidArgument("schedule.rules", rule.getAlpha(),
                        "a rule needs a glob or a regex");
            });
        }
        return new AlphaSchedule(layers, schedule.hasNonlayerAlpha() ? schedule.getNonlayerAlpha() : null, rules);
    }

    /** A job's request as the journal keeps it (the ExtrapolateRequest message's bytes). */
    static ExtrapolationRequest requestFromJournal(byte[] order) {
        try {
            return toRequest(ExtrapolateRequest.parseFrom(order));
        } catch (com.google.protobuf.InvalidProtocolBufferException e) {
            throw new IllegalArgumentException("not an ExtrapolateRequest: " + e.getMessage(), e);
        }
    }

    static ExtrapolationRequest toRequest(ExtrapolateRequest request) {
        return new ExtrapolationRequest(toSpec(request.getSpec()), request.getOutputModel(), request.getOverwrite(),
                request.getMaxShardBytes());
    }

    /** The job's order as the engine holds it; a schedule given as YAML comes back in its structured form. */
    static ExtrapolateRequest toProto(ExtrapolationRequest request) {
        return ExtrapolateRequest.newBuilder()
                .setSpec(toProto(request.spec()))
                .setOutputModel(request.outputModel())
                .setOverwrite(request.overwrite())
                .setMaxShardBytes(request.maxShardBytes())
                .build();
    }

    static dev.expo.api.v1.ExtrapolationSpec toProto(ExtrapolationSpec spec) {
        return dev.expo.api.v1.ExtrapolationSpec.newBuilder()
                .setBaseModel(spec.baseModel())
                .setAlignedModel(spec.alignedModel())
                .setSchedule(toProto(spec.schedule()))
                .setOutputDtype(DtypeMapper.toProto(spec.outputDtype()))
                .build();
    }

    static dev.expo.api.v1.AlphaSchedule toProto(AlphaSchedule schedule) {
        dev.expo.api.v1.AlphaSchedule.Builder out = dev.expo.api.v1.AlphaSchedule.newBuilder();
        switch (schedule.layers()) {
            case LayerSchedule.Uniform uniform -> out.setAlpha(uniform.alpha());
            case LayerSchedule.LayerGroups groups ->
                    out.setLayerGroups(LayerGroups.newBuilder().addAllAlphas(groups.alphas()));
            case LayerSchedule.PerLayer perLayer ->
                    out.setPerLayer(PerLayerAlphas.newBuilder().addAllAlphas(perLayer.alphas()));
            case LayerSchedule.LinearRamp ramp ->
                    out.setLinearRamp(LinearRamp.newBuilder().setFirst(ramp.first()).setLast(ramp.last()));
            case null -> {
            }
        }
        if (schedule.nonlayerAlpha() != null) {
            out.setNonlayerAlpha(schedule.nonlayerAlpha());
        }
        for (TensorRule rule : schedule.rules()) {
            dev.expo.api.v1.TensorRule.Builder wire = dev.expo.api.v1.TensorRule.newBuilder().setAlpha(rule.alpha());
            out.addRules(rule.regex() ? wire.setRegex(rule.pattern()) : wire.setGlob(rule.pattern()));
        }
        return out.build();
    }

    static PlanResponse toProto(ExtrapolationPlan plan) {
        PlanResponse.Builder response = PlanResponse.newBuilder()
                .setNumLayers(plan.numLayers())
                .setOutputDtype(DtypeMapper.toProto(plan.outputDtype()))
                .setOutputBytes(plan.outputBytes());
        for (PlannedTensor tensor : plan.tensors()) {
            TensorAlpha.Builder alpha = TensorAlpha.newBuilder()
                    .setName(tensor.name())
                    .setAlpha(tensor.alpha())
                    .setSource(tensor.source());
            if (tensor.layer() >= 0) {
                alpha.setLayer(tensor.layer());
            }
            for (long dim : tensor.aligned().shape()) {
                alpha.addShape(dim);
            }
            response.addTensors(alpha);
        }
        return response.build();
    }

    static ExtrapolateEvent progressEvent(ExtrapolationJob job, ExtrapolationProgress progress) {
        return ExtrapolateEvent.newBuilder().setJobId(job.id()).setProgress(toProto(progress)).build();
    }

    static ExtrapolateEvent resultEvent(ExtrapolationJob job) {
        return ExtrapolateEvent.newBuilder().setJobId(job.id()).setResult(toProto(job.result())).build();
    }

    static dev.expo.api.v1.ExtrapolationProgress toProto(ExtrapolationProgress progress) {
        dev.expo.api.v1.ExtrapolationProgress.Builder out = dev.expo.api.v1.ExtrapolationProgress.newBuilder()
                .setPhase(switch (progress.phase()) {
                    case QUEUED -> ExtrapolationPhase.EXTRAPOLATION_PHASE_QUEUED;
                    case VALIDATING -> ExtrapolationPhase.EXTRAPOLATION_PHASE_VALIDATING;
                    case WRITING -> ExtrapolationPhase.EXTRAPOLATION_PHASE_WRITING;
                    case PUBLISHING -> ExtrapolationPhase.EXTRAPOLATION_PHASE_PUBLISHING;
                    case DONE -> ExtrapolationPhase.EXTRAPOLATION_PHASE_DONE;
                })
                .setTensorsDone(progress.tensorsDone())
                .setTensorsTotal(progress.tensorsTotal())
                .setBytesDone(progress.bytesDone())
                .setBytesTotal(progress.bytesTotal())
                .setBytesPerSecond(progress.bytesPerSecond())
                .setElapsed(toProto(progress.elapsed()));
        if (progress.eta() != null) {
            out.setEta(toProto(progress.eta()));
        }
        return out.build();
    }

    static dev.expo.api.v1.ExtrapolationResult toProto(ExtrapolationResult result) {
        dev.expo.api.v1.ExtrapolationResult.Builder out = dev.expo.api.v1.ExtrapolationResult.newBuilder()
                .setOutputModel(result.outputModel())
                .setTensorCount(result.tensorCount())
                .setOutputBytes(result.outputBytes())
                .setShardCount(result.shardCount())
                .setOutputDtype(DtypeMapper.toProto(result.outputDtype()))
                .setDuration(toProto(result.duration()))
                .setInputBytes(result.inputBytes());
        for (ExtrapolationResult.NonFiniteTensor tensor : result.nonFiniteTensors()) {
            out.addNonFiniteTensors(NonFiniteTensor.newBuilder().setName(tensor.name())
                    .setNanCount(tensor.nanCount()).setInfCount(tensor.infCount()));
        }
        return out.build();
    }

    static dev.expo.api.v1.ExtrapolationJob toProto(ExtrapolationJob job) {
        dev.expo.api.v1.ExtrapolationJob.Builder out = dev.expo.api.v1.ExtrapolationJob.newBuilder()
                .setJobId(job.id())
                .setState(switch (job.state()) {
                    case QUEUED -> JobState.JOB_STATE_QUEUED;
                    case RUNNING -> JobState.JOB_STATE_RUNNING;
                    case SUCCEEDED -> JobState.JOB_STATE_SUCCEEDED;
                    case FAILED -> JobState.JOB_STATE_FAILED;
                    case CANCELLED -> JobState.JOB_STATE_CANCELLED;
                })
                .setProgress(toProto(job.progress()))
                .setCreateTime(toProto(job.createTime()));
        out.setRequest(toProto(job.request()));
        if (job.result() != null) {
            out.setResult(toProto(job.result()));
        }
        if (job.failure() != null) {
            Status status = job.failure().kind() == null ? Status.INTERNAL : GrpcErrors.codeOf(job.failure().kind());
            out.setError(JobError.newBuilder().setCode(status.getCode().value())
                    .setMessage(job.failure().message()));
        }
        if (job.startTime() != null) {
            out.setStartTime(toProto(job.startTime()));
        }
        if (job.endTime() != null) {
            out.setEndTime(toProto(job.endTime()));
        }
        return out.build();
    }

    static dev.expo.extrapolation.engine.jobs.JobState toEngine(JobState state) {
        return switch (state) {
            case JOB_STATE_QUEUED -> dev.expo.extrapolation.engine.jobs.JobState.QUEUED;
            case JOB_STATE_RUNNING -> dev.expo.extrapolation.engine.jobs.JobState.RUNNING;
            case JOB_STATE_SUCCEEDED -> dev.expo.extrapolation.engine.jobs.JobState.SUCCEEDED;
            case JOB_STATE_FAILED -> dev.expo.extrapolation.engine.jobs.JobState.FAILED;
            case JOB_STATE_CANCELLED -> dev.expo.extrapolation.engine.jobs.JobState.CANCELLED;
            case JOB_STATE_UNSPECIFIED, UNRECOGNIZED -> null;
        };
    }

    static com.google.protobuf.Duration toProto(Duration duration) {
        return com.google.protobuf.Duration.newBuilder().setSeconds(duration.getSeconds())
                .setNanos(duration.getNano()).build();
    }

    static Timestamp toProto(Instant instant) {
        return dev.expo.service.Timestamps.of(instant);
    }
}

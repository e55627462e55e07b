package dev.expo.inference.grpc;

import dev.expo.api.v1.ModelInfo;
import dev.expo.api.v1.ModelKind;
import dev.expo.checkpoint.catalog.ModelDescription;
import dev.expo.service.DtypeMapper;

/** Engine records to and from the expo.v1 inference messages. */
final class InferenceProtoMapper {

    private InferenceProtoMapper() {
    }

    static ModelInfo toProto(ModelDescription model, boolean loaded) {
        ModelInfo.Builder info = ModelInfo.newBuilder()
                .setName(model.name())
                .setKind(toProto(model.kind()))
                .setDtype(DtypeMapper.toProto(model.dtype()))
                .setSizeBytes(model.sizeBytes())
                .setParameterCount(model.parameterCount())
                .setLoaded(loaded);
        if (model.architecture() != null) {
            info.setArchitecture(model.architecture());
        }
        if (model.baseModel() != null) {
            info.setBaseModel(model.baseModel());
        }
        return info.build();
    }

    static ModelKind toProto(dev.expo.checkpoint.catalog.ModelKind kind) {
        return switch (kind) {
            case LANGUAGE_MODEL -> ModelKind.MODEL_KIND_LANGUAGE_MODEL;
            case VISION_TOWER -> ModelKind.MODEL_KIND_VISION_TOWER;
            case PROJECTOR -> ModelKind.MODEL_KIND_PROJECTOR;
            case MULTIMODAL -> ModelKind.MODEL_KIND_MULTIMODAL;
            case ADAPTER -> ModelKind.MODEL_KIND_ADAPTER;
            case UNKNOWN -> ModelKind.MODEL_KIND_UNSPECIFIED;
        };
    }
}

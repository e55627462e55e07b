package dev.expo.inference.grpc;

import dev.expo.api.v1.EmbedImageRequest;
import dev.expo.api.v1.EmbedImageResponse;
import dev.expo.api.v1.GenerateRequest;
import dev.expo.api.v1.GenerateResponse;
import dev.expo.api.v1.InferenceService;
import dev.expo.api.v1.ListModelsRequest;
import dev.expo.api.v1.ListModelsResponse;
import dev.expo.api.v1.LoadModelRequest;
import dev.expo.api.v1.ModelInfo;
import dev.expo.api.v1.ModelKind;
import dev.expo.api.v1.ScoreRequest;
import dev.expo.api.v1.ScoreResponse;
import dev.expo.api.v1.UnloadModelRequest;
import dev.expo.checkpoint.catalog.ModelCatalog;
import dev.expo.checkpoint.catalog.ModelDescription;
import dev.expo.service.NotBuilt;
import dev.expo.service.Pages;
import io.quarkus.grpc.GrpcService;
import io.smallrye.common.annotation.Blocking;
import io.smallrye.mutiny.Multi;
import io.smallrye.mutiny.Uni;
import jakarta.inject.Inject;

import java.util.List;

/** expo.v1.InferenceService: maps requests, calls the engine, maps answers. */
@GrpcService
public class InferenceGrpcService implements InferenceService {

    @Inject
    ModelCatalog catalog;

    @Override
    @Blocking
    public Uni<ListModelsResponse> listModels(ListModelsRequest request) {
        List<ModelDescription> models = catalog.list().stream()
                .filter(m -> request.getKind() == ModelKind.MODEL_KIND_UNSPECIFIED
                        || InferenceProtoMapper.toProto(m.kind()) == request.getKind())
                .toList();
        Pages.Page<ModelDescription> page = Pages.page(models, ModelDescription::name, request.getPageSize(),
                request.getPageToken());
        ListModelsResponse.Builder response = ListModelsResponse.newBuilder().setNextPageToken(page.nextPageToken());
        page.items().forEach(m -> response.addModels(InferenceProtoMapper.toProto(m, false)));
        return Uni.createFrom().item(response.build());
    }

    @Override
    public Multi<GenerateResponse> generate(GenerateRequest request) {
        return Multi.createFrom().failure(NotBuilt.rpc("InferenceService.Generate"));
    }

    @Override
    public Uni<ScoreResponse> score(ScoreRequest request) {
        return Uni.createFrom().failure(NotBuilt.rpc("InferenceService.Score"));
    }

    @Override
    public Uni<EmbedImageResponse> embedImage(EmbedImageRequest request) {
        return Uni.createFrom().failure(NotBuilt.rpc("InferenceService.EmbedImage"));
    }

    @Override
    public Uni<ModelInfo> loadModel(LoadModelRequest request) {
        return Uni.createFrom().failure(NotBuilt.rpc("InferenceService.LoadModel"));
    }

    @Override
    public Uni<ModelInfo> unloadModel(UnloadModelRequest request) {
        return Uni.createFrom().failure(NotBuilt.rpc("InferenceService.UnloadModel"));
    }
}

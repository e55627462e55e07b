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
import dev.expo.api.v1.RewardRequest;
import dev.expo.api.v1.RewardResponse;
import dev.expo.api.v1.ScoreRequest;
import dev.expo.api.v1.ScoreResponse;
import dev.expo.api.v1.UnloadModelRequest;
import dev.expo.checkpoint.catalog.ModelDescription;
import dev.expo.common.ExpoException;
import dev.expo.inference.config.InferenceConfig;
import dev.expo.inference.engine.GenerationListener;
import dev.expo.inference.engine.InferenceEngine;
import dev.expo.inference.engine.Outputs;
import dev.expo.service.Pages;
import dev.expo.service.ServerStream;
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
    InferenceEngine engine;

    @Inject
    InferenceConfig config;

    @Override
    public Multi<GenerateResponse> generate(GenerateRequest request) {
        return ServerStream.open(stream -> start(request, stream));
    }

    /** Starts the generation; its deltas become the stream's, and a client that leaves cancels it. */
    private void start(GenerateRequest request, ServerStream<GenerateResponse> stream) {
        var model = InferenceProtoMapper.modelRef(request);
        InferenceEngine.GenerationHandle handle = engine.generate(model, InferenceProtoMapper.prompt(request),
                InferenceProtoMapper.sampling(request, config.samplingDefaults(), engine.generationDefaults(model)),
                !request.getSampling().hasMaxNewTokens(), new GenerationListener() {
                    @Override
                    public void onDelta(String text, int[] tokenIds, List<Outputs.GeneratedLogprobs> logprobs) {
                        if (!text.isEmpty() || tokenIds.length > 0) {
                            stream.emit(InferenceProtoMapper.delta(text, tokenIds, logprobs));
                        }
                    }

                    @Override
                    public void onFinished(Outputs.FinishReason reason, Outputs.Usage usage) {
                        stream.complete(InferenceProtoMapper.finished(reason, usage));
                    }

                    @Override
                    public void onError(RuntimeException failure) {
                        stream.fail(failure);
                    }
                });
        stream.onStop(handle::cancel);   // cancelling a finished generation is a no-op
    }

    @Override
    @Blocking
    public Uni<ScoreResponse> score(ScoreRequest request) {
        return Uni.createFrom().item(InferenceProtoMapper.toProto(engine.score(InferenceProtoMapper.modelRef(request),
                InferenceProtoMapper.prompt(request), request.getTopLogprobs())));
    }

    @Override
    @Blocking
    public Uni<RewardResponse> reward(RewardRequest request) {
        if (request.getModel().isEmpty()) {
            throw ExpoException.invalidArgument("model", "", "a reward model's name is required");
        }
        return Uni.createFrom().item(InferenceProtoMapper.toProto(engine.reward(request.getModel(),
                request.getInputsList().stream().map(InferenceProtoMapper::prompt).toList(),
                InferenceProtoMapper.position(request.getPosition()), request.getTruncate())));
    }

    @Override
    @Blocking
    public Uni<EmbedImageResponse> embedImage(EmbedImageRequest request) {
        if (request.getModel().isEmpty()) {
            throw ExpoException.invalidArgument("model", "", "a model name is required");
        }
        Outputs.Embedding embedding = engine.embedImage(request.getModel(), request.getImage().toByteArray(),
                request.hasLayer() ? request.getLayer() : null, request.hasPooled() && request.getPooled());
        EmbedImageResponse.Builder response = EmbedImageResponse.newBuilder();
        for (long dim : embedding.shape()) {
            response.addShape(dim);
        }
        for (float value : embedding.values()) {
            response.addValues(value);
        }
        return Uni.createFrom().item(response.build());
    }

    @Override
    @Blocking
    public Uni<ListModelsResponse> listModels(ListModelsRequest request) {
        List<ModelDescription> models = engine.registry().catalog().list().stream()
                .filter(m -> request.getKind() == ModelKind.MODEL_KIND_UNSPECIFIED
                        || InferenceProtoMapper.toProto(m.kind()) == request.getKind())
                .toList();
        Pages.Page<ModelDescription> page = Pages.page(models, ModelDescription::name, request.getPageSize(),
                request.getPageToken());
        ListModelsResponse.Builder response = ListModelsResponse.newBuilder().setNextPageToken(page.nextPageToken());
        page.items().forEach(m -> response.addModels(InferenceProtoMapper.toProto(m,
                engine.registry().isLoaded(m.name()))));
        return Uni.createFrom().item(response.build());
    }

    @Override
    @Blocking
    public Uni<ModelInfo> loadModel(LoadModelRequest request) {
        engine.registry().get(request.getModel());
        return Uni.createFrom().item(InferenceProtoMapper.toProto(engine.registry().catalog()
                .describe(request.getModel()), true));
    }

    @Override
    @Blocking
    public Uni<ModelInfo> unloadModel(UnloadModelRequest request) {
        ModelDescription description = engine.registry().catalog().describe(request.getModel());
        engine.unload(request.getModel());
        return Uni.createFrom().item(InferenceProtoMapper.toProto(description, false));
    }
}

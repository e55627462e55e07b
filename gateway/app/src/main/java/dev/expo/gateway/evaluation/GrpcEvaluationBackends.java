package dev.expo.gateway.evaluation;

import com.google.protobuf.ByteString;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.util.JsonFormat;
import dev.expo.api.v1.ChatMessage;
import dev.expo.api.v1.ChatMessages;
import dev.expo.api.v1.ExtrapolateEvent;
import dev.expo.api.v1.ExtrapolateRequest;
import dev.expo.api.v1.ExtrapolationServiceGrpc;
import dev.expo.api.v1.ExtrapolationSpec;
import dev.expo.api.v1.FinishReason;
import dev.expo.api.v1.GenerateRequest;
import dev.expo.api.v1.GenerateResponse;
import dev.expo.api.v1.InferenceServiceGrpc;
import dev.expo.gateway.routing.Backends;
import dev.expo.api.v1.ListModelsRequest;
import dev.expo.api.v1.ListModelsResponse;
import dev.expo.api.v1.ModelInfo;
import dev.expo.api.v1.ModelKind;
import dev.expo.api.v1.PlanRequest;
import dev.expo.api.v1.PromptResponse;
import dev.expo.api.v1.RewardInput;
import dev.expo.api.v1.RewardPosition;
import dev.expo.api.v1.RewardRequest;
import dev.expo.api.v1.SamplingParams;
import dev.expo.api.v1.UnloadModelRequest;
import dev.expo.common.ExpoException;
import dev.expo.common.store.ModelStore;
import dev.expo.evaluation.engine.runs.EvaluationBackends;
import dev.expo.evaluation.engine.runs.EvaluationRequest;
import io.grpc.Channel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * The evaluation engine's backends over gRPC: generation and rewards on the inference service, extrapolation (and
 * checking a spec with its dry run) on the extrapolation service, and the store the services share for what exists
 * and for removing a model a run made.
 */
public final class GrpcEvaluationBackends implements EvaluationBackends {

    private static final long CHECK_SECONDS = 120;

    private final InferenceServiceGrpc.InferenceServiceStub inference;
    private final InferenceServiceGrpc.InferenceServiceBlockingStub inferenceBlocking;
    private final ExtrapolationServiceGrpc.ExtrapolationServiceStub extrapolation;
    private final ExtrapolationServiceGrpc.ExtrapolationServiceBlockingStub extrapolationBlocking;
    private final ModelStore store;

    public GrpcEvaluationBackends(Channel inference, Channel extrapolation, ModelStore store) {
        this.inference = InferenceServiceGrpc.newStub(inference);
        this.inferenceBlocking = InferenceServiceGrpc.newBlockingStub(inference);
        this.extrapolation = ExtrapolationServiceGrpc.newStub(extrapolation);
        this.extrapolationBlocking = ExtrapolationServiceGrpc.newBlockingStub(extrapolation);
        this.store = store;
    }

    /** The wire spec as the engine stores it (JSON, readable in the run's request.json). */
    static String toJson(com.google.protobuf.MessageOrBuilder message) {
        try {
            return JsonFormat.printer().omittingInsignificantWhitespace().print(message);
        } catch (InvalidProtocolBufferException e) {
            throw new IllegalStateException(e);
        }
    }

    static ExtrapolationSpec spec(String json) {
        ExtrapolationSpec.Builder spec = ExtrapolationSpec.newBuilder();
        parse(json, spec);
        return spec.build();
    }

    static SamplingParams sampling(String json) {
        SamplingParams.Builder sampling = SamplingParams.newBuilder();
        if (json != null) {
            parse(json, sampling);
        }
        return sampling.build();
    }

    private static void parse(String json, com.google.protobuf.Message.Builder into) {
        try {
            JsonFormat.parser().merge(json, into);
        } catch (InvalidProtocolBufferException e) {
            throw new IllegalStateException("a run's stored request does not parse: " + e.getMessage(), e);
        }
    }

    @Override
    public void checkRewardModel(String model) {
        if (!store.exists(model)) {
            throw ExpoException.notFound("reward_model = '" + model + "': no such model in the store");
        }
        ModelInfo info = find(model);
        if (info == null) {
            throw ExpoException.notFound("reward_model = '" + model + "': the inference service does not list it");
        }
        if (info.getKind() != ModelKind.MODEL_KIND_REWARD_MODEL) {
            throw ExpoException.invalidArgument("reward_model = '" + model + "': a " + info.getArchitecture()
                    + ", not a reward model (a *ForSequenceClassification with one label)");
        }
    }

    private ModelInfo find(String model) {
        String token = "";
        do {
            ListModelsRequest request = ListModelsRequest.newBuilder().setPageSize(1000).setPageToken(token).build();
            ListModelsResponse page = call("inference service", () -> inferenceBlocking
                    .withDeadlineAfter(CHECK_SECONDS, TimeUnit.SECONDS).listModels(request));
            for (ModelInfo info : page.getModelsList()) {
                if (info.getName().equals(model)) {
                    return info;
                }
            }
            token = page.getNextPageToken();
        } while (!token.isEmpty());
        return null;
    }

    @Override
    public void checkVariant(EvaluationRequest.Variant variant) {
        String field = "variant " + variant.name();
        if (variant.extrapolated()) {
            call("extrapolation service", () -> extrapolationBlocking.withDeadlineAfter(CHECK_SECONDS, TimeUnit.SECONDS)
                    .plan(PlanRequest.newBuilder().setSpec(spec(variant.extrapolationSpec())).build()));
        } else if (!store.exists(variant.model())) {
            throw ExpoException.notFound(field + ": no model '" + variant.model() + "' in the store");
        }
        if (variant.adapter() != null && !store.exists(variant.adapter())) {
            throw ExpoException.notFound(field + ": no adapter '" + variant.adapter() + "' in the store");
        }
    }

    @Override
    public boolean modelExists(String model) {
        return store.exists(model);
    }

    @Override
    public void extrapolate(String spec, String outputModel, Cancellation cancellation) {
        StreamCall<ExtrapolateRequest, ExtrapolateEvent, Void> call = new StreamCall<>(event -> { }, () -> null);
        extrapolation.extrapolate(ExtrapolateRequest.newBuilder().setSpec(spec(spec)).setOutputModel(outputModel)
                .build(), call);
        await(call, cancellation, "extrapolation service");
    }

    @Override
    public void removeModel(String model) {
        try {
            inferenceBlocking.withDeadlineAfter(CHECK_SECONDS, TimeUnit.SECONDS)
                    .unloadModel(UnloadModelRequest.newBuilder().setModel(model).build());
        } catch (StatusRuntimeException e) {
            // not loaded (or already gone): nothing to unload
            if (!BackendStatus.is(e, Status.Code.NOT_FOUND) && !BackendStatus.is(e, Status.Code.FAILED_PRECONDITION)) {
                throw BackendStatus.toEngine("inference service", e);
            }
        }
        // Out of sight in one rename, then deleted: nobody sees half a model.
        Path folder = store.pathOf("model", model);
        Path doomed = store.newStagingDir(model.replace('/', '_'));
        try {
            Files.delete(doomed);
            Files.move(folder, doomed, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot remove " + folder, e);
        } finally {
            ModelStore.deleteTree(doomed);
        }
    }

    @Override
    public CompletableFuture<Generation> generate(GenerationCall call) {
        EvaluationRequest.Variant variant = call.variant();
        GenerateRequest.Builder request = GenerateRequest.newBuilder().setModel(call.model());
        if (variant.adapter() != null) {
            request.setAdapter(variant.adapter());
        }
        if (variant.adapterScale() != null) {
            request.setAdapterScale(variant.adapterScale());
        }
        if (call.prompt().image() != null && call.prompt().image().length > 0) {
            request.setImage(ByteString.copyFrom(call.prompt().image()));
        }
        if (call.useChatTemplate()) {
            request.setChat(ChatMessages.newBuilder().addMessages(ChatMessage.newBuilder().setRole("user")
                    .setContent(call.prompt().instruction())));
        } else {
            request.setText(call.prompt().instruction());
        }
        SamplingParams.Builder sampling = sampling(variant.sampling()).toBuilder();
        if (!sampling.hasSeed()) {
            sampling.setSeed(call.seed());
        }
        request.setSampling(sampling);

        StringBuilder text = new StringBuilder();
        List<Integer> ids = new ArrayList<>();
        FinishReason[] finish = {FinishReason.FINISH_REASON_UNSPECIFIED};
        StreamCall<GenerateRequest, GenerateResponse, Generation> stream = new StreamCall<>(response -> {
            text.append(response.getText());
            ids.addAll(response.getTokenIdsList());
            if (response.getFinishReason() != FinishReason.FINISH_REASON_UNSPECIFIED) {
                finish[0] = response.getFinishReason();
            }
        }, () -> new Generation(text.toString(), ids.stream().mapToInt(Integer::intValue).toArray(),
                finish[0] == FinishReason.FINISH_REASON_LENGTH ? "length" : "stop"));
        Backends.forModel(inference, request.getModel()).generate(request.build(), stream);
        CompletableFuture<Generation> result = new CompletableFuture<>() {
            @Override
            public boolean cancel(boolean mayInterruptIfRunning) {
                stream.cancel(mayInterruptIfRunning);
                return super.cancel(mayInterruptIfRunning);
            }
        };
        stream.whenComplete((generation, failure) -> {
            if (failure != null) {
                result.completeExceptionally(failure instanceof StatusRuntimeException
                        ? BackendStatus.toEngine("inference service", failure) : failure);
            } else {
                result.complete(generation);
            }
        });
        return result;
    }

    @Override
    public List<Double> reward(String rewardModel, boolean lastToken, List<RewardCall> calls) {
        // An output too long for the judge's context is judged on its beginning, as reward pipelines truncate.
        RewardRequest.Builder request = RewardRequest.newBuilder().setModel(rewardModel).setTruncate(true)
                .setPosition(lastToken ? RewardPosition.REWARD_POSITION_LAST_TOKEN : RewardPosition.REWARD_POSITION_HF);
        for (RewardCall call : calls) {
            request.addInputs(RewardInput.newBuilder().setPromptResponse(PromptResponse.newBuilder()
                    .setPrompt(call.instruction()).setResponse(call.response())));
        }
        return call("inference service", () -> Backends.forModel(inferenceBlocking, rewardModel)
                .reward(request.build())).getScoresList().stream()
                .map(score -> (double) score.getReward()).toList();
    }

    private static <T> T call(String backend, java.util.function.Supplier<T> rpc) {
        try {
            return rpc.get();
        } catch (StatusRuntimeException e) {
            throw BackendStatus.toEngine(backend, e);
        }
    }

    /** Waits for a streaming call, cancelling it when the run is. */
    private static void await(CompletableFuture<?> call, Cancellation cancellation, String backend) {
        while (true) {
            if (cancellation.cancelled()) {
                call.cancel(true);
                throw new ExpoException(ExpoException.Kind.CANCELLED, "the evaluation run stopped");
            }
            try {
                call.get(200, TimeUnit.MILLISECONDS);
                return;
            } catch (TimeoutException e) {
                // poll the cancellation again
            } catch (InterruptedException e) {
                call.cancel(true);
                Thread.currentThread().interrupt();
                throw new ExpoException(ExpoException.Kind.CANCELLED, "the evaluation run stopped");
            } catch (ExecutionException e) {
                throw BackendStatus.toEngine(backend, e.getCause());
            }
        }
    }
}

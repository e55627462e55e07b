package dev.expo.inference.grpc;

import dev.expo.api.v1.ChatMessages;
import dev.expo.api.v1.GenerateRequest;
import dev.expo.api.v1.GenerateResponse;
import dev.expo.api.v1.GeneratedTokenLogprobs;
import dev.expo.api.v1.ModelInfo;
import dev.expo.api.v1.ModelKind;
import dev.expo.api.v1.PositionScore;
import dev.expo.api.v1.RewardInput;
import dev.expo.api.v1.RewardPosition;
import dev.expo.api.v1.RewardResponse;
import dev.expo.api.v1.RewardScore;
import dev.expo.api.v1.ScoreRequest;
import dev.expo.api.v1.ScoreResponse;
import dev.expo.api.v1.TokenLogprob;
import dev.expo.api.v1.Usage;
import dev.expo.checkpoint.catalog.ModelDescription;
import dev.expo.common.ExpoException;
import dev.expo.inference.config.InferenceConfig;
import dev.expo.inference.engine.GenerationDefaults;
import dev.expo.inference.engine.ModelRef;
import dev.expo.inference.engine.Outputs;
import dev.expo.inference.engine.Prompt;
import dev.expo.modeling.sampling.SamplingParams;
import dev.expo.modeling.tokenizer.ChatTemplate;
import dev.expo.service.DtypeMapper;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;

/** expo.v1 inference messages to and from engine records. */
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
            case REWARD_MODEL -> ModelKind.MODEL_KIND_REWARD_MODEL;
            case VISION_TOWER -> ModelKind.MODEL_KIND_VISION_TOWER;
            case PROJECTOR -> ModelKind.MODEL_KIND_PROJECTOR;
            case MULTIMODAL -> ModelKind.MODEL_KIND_MULTIMODAL;
            case ADAPTER -> ModelKind.MODEL_KIND_ADAPTER;
            case UNKNOWN -> ModelKind.MODEL_KIND_UNSPECIFIED;
        };
    }

    static ModelRef modelRef(String model, String adapter, boolean hasScale, double scale) {
        if (model.isEmpty()) {
            throw ExpoException.invalidArgument("model", "", "a model name is required");
        }
        return new ModelRef(model, adapter.isEmpty() ? null : adapter, hasScale ? scale : null);
    }

    static ModelRef modelRef(GenerateRequest r) {
        return modelRef(r.getModel(), r.getAdapter(), r.hasAdapterScale(), r.getAdapterScale());
    }

    static ModelRef modelRef(ScoreRequest r) {
        return modelRef(r.getModel(), r.getAdapter(), r.hasAdapterScale(), r.getAdapterScale());
    }

    static Prompt prompt(GenerateRequest r) {
        return prompt(r.getPromptCase().getNumber(), r.getText(), r.getChat(), r.getTokenIds().getIdsList(),
                r.getImage().toByteArray());
    }

    static Prompt prompt(ScoreRequest r) {
        return prompt(r.getPromptCase().getNumber(), r.getText(), r.getChat(), r.getTokenIds().getIdsList(),
                r.getImage().toByteArray());
    }

    /** promptCase: 5 = text, 6 = chat, 7 = token ids (the same field numbers in both requests). */
    private static Prompt prompt(int promptCase, String text, ChatMessages chat, List<Integer> ids, byte[] image) {
        Prompt prompt = switch (promptCase) {
            case 5 -> Prompt.ofText(text);
            case 6 -> new Prompt(null, messages(chat), !chat.hasAddGenerationPrompt() || chat.getAddGenerationPrompt(),
                    null, null);
            case 7 -> Prompt.ofIds(ids.stream().mapToLong(Integer::longValue).toArray());
            default -> throw ExpoException.invalidArgument("prompt", "(unset)", "give text, chat messages or token "
                    + "ids");
        };
        return prompt.withImage(image);
    }

    /** A reward input: text, chat (no generation prompt unless asked), ids, or a prompt and response as a chat. */
    static Prompt prompt(RewardInput input) {
        return switch (input.getInputCase()) {
            case TEXT -> Prompt.ofText(input.getText());
            case CHAT -> new Prompt(null, messages(input.getChat()), input.getChat().hasAddGenerationPrompt()
                    && input.getChat().getAddGenerationPrompt(), null, null);
            case TOKEN_IDS -> Prompt.ofIds(input.getTokenIds().getIdsList().stream().mapToLong(Integer::longValue)
                    .toArray());
            case PROMPT_RESPONSE -> new Prompt(null, List.of(
                    new ChatTemplate.Message("user", input.getPromptResponse().getPrompt()),
                    new ChatTemplate.Message("assistant", input.getPromptResponse().getResponse())), false, null,
                    null);
            case INPUT_NOT_SET -> throw ExpoException.invalidArgument("inputs", "(unset)", "each input needs text, "
                    + "chat messages, token ids or a prompt and response");
        };
    }

    static Outputs.RewardPosition position(RewardPosition position) {
        return switch (position) {
            case REWARD_POSITION_UNSPECIFIED, REWARD_POSITION_HF -> Outputs.RewardPosition.HF;
            case REWARD_POSITION_LAST_TOKEN -> Outputs.RewardPosition.LAST_TOKEN;
            case UNRECOGNIZED -> throw ExpoException.invalidArgument("position", position, "is not a known position");
        };
    }

    static RewardResponse toProto(List<Outputs.Reward> rewards) {
        RewardResponse.Builder out = RewardResponse.newBuilder();
        for (Outputs.Reward r : rewards) {
            out.addScores(RewardScore.newBuilder().setReward(r.reward()).setPosition(r.position())
                    .setInputTokens(r.tokens()).setTruncated(r.truncated()));
        }
        return out.build();
    }

    private static List<ChatTemplate.Message> messages(ChatMessages chat) {
        return chat.getMessagesList().stream().map(m -> new ChatTemplate.Message(checkRole(m.getRole()),
                m.getContent())).toList();
    }

    private static String checkRole(String role) {
        if (!role.equals("system") && !role.equals("user") && !role.equals("assistant")) {
            throw ExpoException.invalidArgument("chat.messages.role", role, "must be system, user or assistant");
        }
        return role;
    }

    /** The request's values, then the model's (its generation_config.json), then the server's defaults. */
    static SamplingParams sampling(GenerateRequest r, InferenceConfig.SamplingDefaults server,
                                   GenerationDefaults model) {
        SamplingParams defaults = model.over(SamplingParams.builder()
                .temperature(server.temperature())
                .topP(server.topP())
                .topK(server.topK())
                .minP(server.minP())
                .repetitionPenalty(server.repetitionPenalty())
                .maxNewTokens(server.maxNewTokens())
                .build());
        var s = r.getSampling();
        SamplingParams.Builder params = defaults.toBuilder()
                .stop(s.getStopList())
                .stopTokenIds(new HashSet<>(s.getStopTokenIdsList()))
                .ignoreEos(s.getIgnoreEos())
                .logprobs(r.getLogprobs())
                .topLogprobs(r.getTopLogprobs());
        if (s.hasTemperature()) {
            params.temperature(s.getTemperature());
        }
        if (s.hasTopP()) {
            params.topP(s.getTopP());
        }
        if (s.hasTopK()) {
            params.topK(s.getTopK());
        }
        if (s.hasMinP()) {
            params.minP(s.getMinP());
        }
        if (s.hasRepetitionPenalty()) {
            params.repetitionPenalty(s.getRepetitionPenalty());
        }
        if (s.hasFrequencyPenalty()) {
            params.frequencyPenalty(s.getFrequencyPenalty());
        }
        if (s.hasPresencePenalty()) {
            params.presencePenalty(s.getPresencePenalty());
        }
        if (s.hasNoRepeatNgramSize()) {
            params.noRepeatNgramSize(s.getNoRepeatNgramSize());
        }
        if (s.hasMaxNewTokens()) {
            params.maxNewTokens(s.getMaxNewTokens());
        }
        if (s.hasSeed()) {
            params.seed(s.getSeed());
        }
        return params.build();
    }

    static GenerateResponse delta(String text, int[] ids, List<Outputs.GeneratedLogprobs> logprobs) {
        GenerateResponse.Builder response = GenerateResponse.newBuilder().setText(text);
        for (int id : ids) {
            response.addTokenIds(id);
        }
        for (Outputs.GeneratedLogprobs lp : logprobs) {
            response.addLogprobs(GeneratedTokenLogprobs.newBuilder().setTokenId(lp.tokenId()).setLogprob(lp.logprob())
                    .setToken(lp.token()).addAllTop(top(lp.top())));
        }
        return response.build();
    }

    static GenerateResponse finished(Outputs.FinishReason reason, Outputs.Usage usage) {
        return GenerateResponse.newBuilder()
                .setFinishReason(switch (reason) {
                    case STOP -> dev.expo.api.v1.FinishReason.FINISH_REASON_STOP;
                    case LENGTH -> dev.expo.api.v1.FinishReason.FINISH_REASON_LENGTH;
                    case CANCELLED -> dev.expo.api.v1.FinishReason.FINISH_REASON_CANCELLED;
                })
                .setUsage(Usage.newBuilder().setPromptTokens(usage.promptTokens())
                        .setCachedPromptTokens(usage.cachedPromptTokens())
                        .setGeneratedTokens(usage.generatedTokens())
                        .setTimeToFirstToken(duration(usage.timeToFirstToken()))
                        .setTotalTime(duration(usage.totalTime())))
                .build();
    }

    static ScoreResponse toProto(Outputs.ScoreResult result) {
        ScoreResponse.Builder response = ScoreResponse.newBuilder();
        for (long id : result.tokenIds()) {
            response.addTokenIds((int) id);
        }
        for (Outputs.PositionScore position : result.positions()) {
            PositionScore.Builder score = PositionScore.newBuilder().addAllTop(top(position.top()));
            if (position.tokenId() != null) {
                score.setTokenId(position.tokenId()).setLogprob(position.logprob());
            }
            response.addPositions(score);
        }
        return response.build();
    }

    private static List<TokenLogprob> top(List<Outputs.TokenLogprob> top) {
        List<TokenLogprob> out = new ArrayList<>();
        for (Outputs.TokenLogprob t : top) {
            TokenLogprob.Builder logprob = TokenLogprob.newBuilder().setTokenId(t.tokenId()).setLogprob(t.logprob());
            if (t.token() != null) {
                logprob.setToken(t.token());
            }
            out.add(logprob.build());
        }
        return out;
    }

    private static com.google.protobuf.Duration duration(Duration d) {
        return com.google.protobuf.Duration.newBuilder().setSeconds(d.getSeconds()).setNanos(d.getNano()).build();
    }
}

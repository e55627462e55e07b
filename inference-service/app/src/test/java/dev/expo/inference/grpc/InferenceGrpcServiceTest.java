package dev.expo.inference.grpc;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.google.protobuf.ByteString;
import dev.expo.api.v1.ChatMessage;
import dev.expo.api.v1.ChatMessages;
import dev.expo.api.v1.EmbedImageRequest;
import dev.expo.api.v1.EmbedImageResponse;
import dev.expo.api.v1.FinishReason;
import dev.expo.api.v1.GenerateRequest;
import dev.expo.api.v1.GenerateResponse;
import dev.expo.api.v1.InferenceServiceGrpc;
import dev.expo.api.v1.ListModelsRequest;
import dev.expo.api.v1.LoadModelRequest;
import dev.expo.api.v1.ModelInfo;
import dev.expo.api.v1.PromptResponse;
import dev.expo.api.v1.RewardInput;
import dev.expo.api.v1.RewardPosition;
import dev.expo.api.v1.RewardRequest;
import dev.expo.api.v1.RewardScore;
import dev.expo.api.v1.SamplingParams;
import dev.expo.api.v1.ScoreRequest;
import dev.expo.api.v1.ScoreResponse;
import dev.expo.api.v1.TokenIds;
import dev.expo.api.v1.UnloadModelRequest;
import dev.expo.checkpoint.SafetensorsFile;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.quarkus.grpc.GrpcClient;
import io.quarkus.test.common.QuarkusTestResource;
import io.quarkus.test.junit.QuarkusTest;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The inference service as clients see it: goldens through gRPC, and every kind of bad request. */
@QuarkusTest
@QuarkusTestResource(value = InferenceStoreResource.class, restrictToAnnotatedClass = true)
class InferenceGrpcServiceTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final List<Integer> P0 = List.of(1, 242, 339, 311, 60, 228, 99, 367, 317, 117, 177, 377);

    @GrpcClient("inference")
    InferenceServiceGrpc.InferenceServiceBlockingStub client;

    private List<GenerateResponse> generate(GenerateRequest request) {
        List<GenerateResponse> responses = new ArrayList<>();
        client.withDeadlineAfter(60, TimeUnit.SECONDS).generate(request).forEachRemaining(responses::add);
        return responses;
    }

    private static GenerateRequest.Builder greedy(String model, List<Integer> ids, int tokens) {
        return GenerateRequest.newBuilder().setModel(model).setTokenIds(TokenIds.newBuilder().addAllIds(ids))
                .setSampling(SamplingParams.newBuilder().setTemperature(0).setMaxNewTokens(tokens));
    }

    @Test
    void greedyGenerationStreamsTheReferenceTokensAndEndsWithUsage() throws Exception {
        List<GenerateResponse> responses = generate(greedy("tiny-llama-sft", P0, 20).build());
        List<Integer> tokens = responses.stream().flatMap(r -> r.getTokenIdsList().stream()).toList();
        JsonNode golden = JSON.readTree(Files.readString(InferenceStoreResource.fixture(
                "tiny-llama-sft/golden/generate.json"))).get("p0").get("bf16").get("new_tokens");
        List<Integer> expected = new ArrayList<>();
        golden.forEach(t -> expected.add(t.asInt()));
        assertThat(tokens).isEqualTo(expected);
        GenerateResponse last = responses.getLast();
        assertThat(last.getFinishReason()).isEqualTo(FinishReason.FINISH_REASON_LENGTH);
        assertThat(last.getUsage().getPromptTokens()).isEqualTo(12);
        assertThat(last.getUsage().getGeneratedTokens()).isEqualTo(20);
        assertThat(responses.size()).isGreaterThan(2);   // streamed, not one block
    }

    @Test
    void aModelsGenerationConfigFillsWhatTheRequestLeavesUnset() throws Exception {
        // generation_config.json: do_sample false (greedy, whatever its temperature), max_new_tokens 7; the server's
        // own defaults are temperature 1 and 256 tokens.
        GenerateRequest bare = GenerateRequest.newBuilder().setModel("tiny-llama-greedy")
                .setTokenIds(TokenIds.newBuilder().addAllIds(P0)).build();
        List<Integer> tokens = generate(bare).stream().flatMap(r -> r.getTokenIdsList().stream()).toList();
        JsonNode golden = JSON.readTree(Files.readString(InferenceStoreResource.fixture(
                "tiny-llama-sft/golden/generate.json"))).get("p0").get("bf16").get("new_tokens");
        List<Integer> expected = new ArrayList<>();
        golden.forEach(t -> expected.add(t.asInt()));
        assertThat(tokens).isEqualTo(expected.subList(0, 7));
        // The request's own values win.
        assertThat(generate(greedy("tiny-llama-greedy", P0, 3).build()).getLast().getUsage().getGeneratedTokens())
                .isEqualTo(3);
        assertCode(() -> generate(greedy("tiny-llama-bad-defaults", P0, 2).build()), Status.Code.INVALID_ARGUMENT,
                "generation_config.json: top_p");
    }

    @Test
    void scoreGivesLogSoftmaxOfTheReferenceLogitsWithAndWithoutTheAdapter() throws Exception {
        for (String variant : List.of("plain", "lora")) {
            ScoreRequest.Builder request = ScoreRequest.newBuilder().setModel("tiny-llama-sft").setTopLogprobs(3)
                    .setTokenIds(TokenIds.newBuilder().addAllIds(P0));
            String file = "tiny-llama-sft/golden/logits.safetensors";
            if (variant.equals("lora")) {
                request.setAdapter("tiny-llama-lora");
                file = "tiny-llama-lora/golden/logits.safetensors";
            }
            ScoreResponse response = client.score(request.build());
            float[] logits;
            try (SafetensorsFile golden = SafetensorsFile.open(InferenceStoreResource.fixture(file))) {
                logits = golden.tensor("logits.bf16.p0").toFloats();
            }
            assertThat(response.getPositionsCount()).isEqualTo(P0.size());
            for (int i = 0; i < P0.size(); i++) {
                float[] expected = logSoftmax(Arrays.copyOfRange(logits, i * 384, (i + 1) * 384));
                var position = response.getPositions(i);
                if (i < P0.size() - 1) {
                    assertThat(position.getTokenId()).isEqualTo(P0.get(i + 1));
                    assertThat((double) position.getLogprob()).as(variant + " position " + i)
                            .isCloseTo(expected[P0.get(i + 1)], org.assertj.core.data.Offset.offset(1e-4));
                } else {
                    assertThat(position.hasTokenId()).isFalse();
                }
                assertThat(position.getTopList()).hasSize(3);
                assertThat((double) position.getTop(0).getLogprob()).isCloseTo(max(expected),
                        org.assertj.core.data.Offset.offset(1e-4));
            }
        }
    }

    @Test
    void imagesGoThroughTheVisionTowerAndTheMultimodalModel() throws Exception {
        byte[] png = Files.readAllBytes(InferenceStoreResource.fixture("images/img1_31x31.png"));
        EmbedImageResponse embedding = client.embedImage(EmbedImageRequest.newBuilder().setModel("tiny-clip-vision")
                .setImage(ByteString.copyFrom(png)).setLayer(-2).build());
        assertThat(embedding.getShapeList()).containsExactly(17L, 64L);
        try (SafetensorsFile golden = SafetensorsFile.open(InferenceStoreResource.fixture(
                "tiny-clip-vision/golden/img1_31x31.safetensors"))) {
            float[] expected = golden.tensor("hidden_states_penultimate.bf16").toFloats();
            for (int i = 0; i < expected.length; i++) {
                assertThat((double) embedding.getValues(i)).isCloseTo(expected[i],
                        org.assertj.core.data.Offset.offset(1e-4));
            }
        }
        List<GenerateResponse> responses = generate(GenerateRequest.newBuilder().setModel("tiny-vlm")
                .setImage(ByteString.copyFrom(png))
                .setChat(ChatMessages.newBuilder().addMessages(ChatMessage.newBuilder().setRole("user")
                        .setContent("Describe the picture.")))
                .setSampling(SamplingParams.newBuilder().setTemperature(0).setMaxNewTokens(5)).build());
        // 16 image tokens, then the 18 tokens of "<|user|>\nDescribe the picture.</s>\n<|assistant|>\n"
        assertThat(responses.getLast().getUsage().getPromptTokens()).isEqualTo(16 + 18);
        assertThat(responses.stream().mapToInt(GenerateResponse::getTokenIdsCount).sum()).isEqualTo(5);
    }

    @Test
    void modelsAreListedWithKindsAndLoadedOnDemand() {
        client.unloadModel(UnloadModelRequest.newBuilder().setModel("tiny-mistral").build());
        List<ModelInfo> models = client.listModels(ListModelsRequest.getDefaultInstance()).getModelsList();
        assertThat(models).extracting(ModelInfo::getName).containsExactly("tiny-clip-vision",
                "tiny-llama-bad-defaults", "tiny-llama-greedy", "tiny-llama-lora", "tiny-llama-sft", "tiny-mistral",
                "tiny-reward", "tiny-vlm");
        assertThat(models).filteredOn(m -> m.getName().equals("tiny-reward")).singleElement()
                .extracting(ModelInfo::getKind).isEqualTo(dev.expo.api.v1.ModelKind.MODEL_KIND_REWARD_MODEL);
        assertThat(models).filteredOn(m -> m.getName().equals("tiny-vlm")).singleElement()
                .extracting(ModelInfo::getKind).isEqualTo(dev.expo.api.v1.ModelKind.MODEL_KIND_MULTIMODAL);
        ModelInfo mistral = client.loadModel(LoadModelRequest.newBuilder().setModel("tiny-mistral").build());
        assertThat(mistral.getLoaded()).isTrue();
        assertThat(mistral.getArchitecture()).isEqualTo("MistralForCausalLM");
    }

    @Test
    void rewardsAreTheReferenceScoresInOrderAndBadInputsGetTheirStatus() throws Exception {
        JsonNode main = JSON.readTree(Files.readString(InferenceStoreResource.fixture(
                "tiny-reward/golden/scores.json"))).get("main");
        RewardRequest.Builder request = RewardRequest.newBuilder().setModel("tiny-reward");
        main.get("texts").forEach(t -> request.addInputs(RewardInput.newBuilder().setText(t.asText())));
        List<RewardScore> scores = client.reward(request.build()).getScoresList();
        assertThat(scores).hasSize(main.get("texts").size());
        for (int i = 0; i < scores.size(); i++) {
            assertThat((double) scores.get(i).getReward()).isCloseTo(main.get("variants").get("bf16").get("score")
                    .get(i).asDouble(), org.assertj.core.api.Assertions.within(1e-4));
            assertThat(scores.get(i).getPosition()).isEqualTo(main.get("hf_scored_position").get(i).asInt());
        }
        RewardScore chat = client.reward(RewardRequest.newBuilder().setModel("tiny-reward").setPosition(
                RewardPosition.REWARD_POSITION_LAST_TOKEN).addInputs(RewardInput.newBuilder().setPromptResponse(
                PromptResponse.newBuilder().setPrompt("What is red?").setResponse("A cube."))).build()).getScores(0);
        assertThat(chat.getPosition()).isEqualTo(chat.getInputTokens() - 1);

        // longer than the 256-position context: refused, or with truncate scored on its first 256 tokens
        TokenIds.Builder long300 = TokenIds.newBuilder();
        TokenIds.Builder first256 = TokenIds.newBuilder();
        for (int i = 0; i < 300; i++) {
            long300.addIds(3 + i % 200);
            if (i < 256) {
                first256.addIds(3 + i % 200);
            }
        }
        assertCode(() -> client.reward(RewardRequest.newBuilder().setModel("tiny-reward").addInputs(
                RewardInput.newBuilder().setTokenIds(long300)).build()), Status.Code.INVALID_ARGUMENT, "context");
        List<RewardScore> cut = client.reward(RewardRequest.newBuilder().setModel("tiny-reward").setTruncate(true)
                .addInputs(RewardInput.newBuilder().setTokenIds(long300))
                .addInputs(RewardInput.newBuilder().setTokenIds(first256)).build()).getScoresList();
        assertThat(cut.get(0).getTruncated()).isTrue();
        assertThat(cut.get(1).getTruncated()).isFalse();
        assertThat(cut.get(0).getInputTokens()).isEqualTo(256);
        assertThat(cut.get(0).getReward()).isEqualTo(cut.get(1).getReward());
        assertCode(() -> client.reward(RewardRequest.newBuilder().setModel("tiny-reward").build()),
                Status.Code.INVALID_ARGUMENT, "inputs");
        assertCode(() -> client.reward(RewardRequest.newBuilder().setModel("tiny-reward")
                .addInputs(RewardInput.getDefaultInstance()).build()), Status.Code.INVALID_ARGUMENT, "inputs");
        assertCode(() -> client.reward(RewardRequest.newBuilder().setModel("tiny-llama-sft")
                .addInputs(RewardInput.newBuilder().setText("hi")).build()), Status.Code.INVALID_ARGUMENT,
                "not a reward model");
        assertCode(() -> client.reward(RewardRequest.newBuilder().setModel("no-such-rm")
                .addInputs(RewardInput.newBuilder().setText("hi")).build()), Status.Code.NOT_FOUND, "no-such-rm");
    }

    @Test
    void badRequestsGetTheirStatusAndTheServiceKeepsServing() {
        assertCode(() -> generate(greedy("no-such-model", P0, 2).build()), Status.Code.NOT_FOUND, "no-such-model");
        assertCode(() -> generate(greedy("tiny-llama-sft", List.of(1, 99999), 2).build()),
                Status.Code.INVALID_ARGUMENT, "token_ids");
        assertCode(() -> generate(greedy("tiny-llama-sft", P0, 2).setSampling(SamplingParams.newBuilder()
                .addStopTokenIds(384)).build()), Status.Code.INVALID_ARGUMENT,
                "stop_token_ids = 384: must be in [0, 384) for model \"tiny-llama-sft\"");
        assertCode(() -> generate(greedy("tiny-llama-sft", P0, 2).setSampling(SamplingParams.newBuilder()
                .setTopP(1.5f)).build()), Status.Code.INVALID_ARGUMENT, "top_p");
        assertCode(() -> generate(greedy("tiny-llama-sft", P0, 2).setImage(ByteString.copyFromUtf8("png?")).build()),
                Status.Code.INVALID_ARGUMENT, "images need a multimodal model");
        assertCode(() -> generate(greedy("tiny-vlm", P0, 2).setImage(ByteString.copyFromUtf8("not an image"))
                .build()), Status.Code.INVALID_ARGUMENT, "not a PNG or JPEG");
        assertCode(() -> generate(greedy("tiny-llama-sft", java.util.Collections.nCopies(300, 5), 2).build()),
                Status.Code.INVALID_ARGUMENT, "context of 256");
        assertCode(() -> generate(greedy("tiny-mistral", P0, 2).setAdapter("tiny-llama-lora").build()),
                Status.Code.FAILED_PRECONDITION, "tiny-llama-lora");
        assertCode(() -> generate(greedy("tiny-llama-sft", P0, 2).setAdapter("tiny-clip-vision").build()),
                Status.Code.INVALID_ARGUMENT, "not a LoRA adapter");
        assertCode(() -> client.embedImage(EmbedImageRequest.newBuilder().setModel("tiny-clip-vision")
                .setImage(ByteString.copyFromUtf8("x")).setLayer(7).build()), Status.Code.INVALID_ARGUMENT, "image");
        assertThat(generate(greedy("tiny-llama-sft", P0, 2).build()).getLast().getUsage().getGeneratedTokens())
                .isEqualTo(2);
    }

    private static void assertCode(Runnable call, Status.Code code, String message) {
        assertThatThrownBy(call::run).isInstanceOfSatisfying(StatusRuntimeException.class, e -> {
            assertThat(e.getStatus().getCode()).as(e.getStatus().toString()).isEqualTo(code);
            assertThat(e.getStatus().getDescription()).contains(message);
        });
    }

    private static float[] logSoftmax(float[] logits) {
        double max = Double.NEGATIVE_INFINITY;
        for (float l : logits) {
            max = Math.max(max, l);
        }
        double sum = 0;
        for (float l : logits) {
            sum += Math.exp(l - max);
        }
        float[] out = new float[logits.length];
        for (int i = 0; i < logits.length; i++) {
            out[i] = (float) (logits[i] - max - Math.log(sum));
        }
        return out;
    }

    private static double max(float[] values) {
        double max = Double.NEGATIVE_INFINITY;
        for (float v : values) {
            max = Math.max(max, v);
        }
        return max;
    }
}

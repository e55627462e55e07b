package dev.expo.e2e;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.openai.core.JsonValue;
import com.openai.core.http.StreamResponse;
import com.openai.errors.RateLimitException;
import com.openai.models.chat.completions.ChatCompletion;
import com.openai.models.chat.completions.ChatCompletionChunk;
import com.openai.models.chat.completions.ChatCompletionContentPart;
import com.openai.models.chat.completions.ChatCompletionContentPartImage;
import com.openai.models.chat.completions.ChatCompletionContentPartText;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import com.openai.models.completions.Completion;
import com.openai.models.completions.CompletionCreateParams;
import dev.expo.api.v1.GenerateRequest;
import dev.expo.api.v1.InferenceServiceGrpc;
import dev.expo.api.v1.SamplingParams;
import dev.expo.benchmarks.SyntheticLlama;
import io.grpc.Metadata;
import io.grpc.stub.MetadataUtils;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The gateway as the public sees it: keys, quotas, the OpenAI-compatible API through the official OpenAI Java client
 * (streaming and not, text and image), a client that leaves mid-stream, and an A/B split.
 */
@ExtendWith(StackExtension.class)
class PublicApiIT {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final HttpClient HTTP = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(10)).build();
    /** A small model with 2048 positions: a stream on it runs long enough to be left mid-way. */
    static final String LONG_MODEL = "openai-long-llama";

    @BeforeAll
    static void seed(Stack stack) throws Exception {
        Cli.Result seed = Cli.run(stack, "demo", "seed", "--store", stack.store.toString());
        assertThat(seed.exitCode()).as(seed.toString()).isZero();
        java.nio.file.Path model = stack.store.resolve(LONG_MODEL);
        if (!Files.exists(model)) {
            // Big enough that 1800 tokens take seconds on two cores, so a stream is still running when a test leaves it.
            SyntheticLlama.writeModel(new SyntheticLlama.Shape(384, 512, 1024, 8, 8), Long.MAX_VALUE, model);
            for (String file : List.of("tokenizer.json", "tokenizer_config.json")) {
                Files.copy(stack.fixture("tiny-llama-sft/" + file), model.resolve(file));
            }
        }
    }

    private static OpenAIClient client(Stack stack, String key) {
        return OpenAIOkHttpClient.builder().apiKey(key).baseUrl("http://" + stack.gatewayAddress() + "/v1")
                .maxRetries(0).timeout(Duration.ofSeconds(60)).build();
    }

    private static String key(Stack stack, String name, String... options) throws Exception {
        List<String> args = new ArrayList<>(List.of("keys", "create", "--name", name + "-" + System.nanoTime(),
                "--role", "client", "--json"));
        args.addAll(List.of(options));
        Cli.Result created = Cli.run(stack, args.toArray(String[]::new));
        assertThat(created.exitCode()).as(created.toString()).isZero();
        return JSON.readTree(created.stdout()).get("key").asText();
    }

    private static HttpResponse<String> get(Stack stack, String path, String key) throws Exception {
        HttpRequest.Builder request = HttpRequest.newBuilder(URI.create("http://" + stack.gatewayAddress() + path))
                .timeout(Duration.ofSeconds(30));
        if (key != null) {
            request.header("Authorization", "Bearer " + key);
        }
        return HTTP.send(request.build(), HttpResponse.BodyHandlers.ofString());
    }

    @Test
    void withoutAKeyTheHttpApiAnswers401AndAClientKeyCannotAdminister(Stack stack) throws Exception {
        HttpResponse<String> refused = get(stack, "/v1/models", null);
        assertThat(refused.statusCode()).isEqualTo(401);
        assertThat(JSON.readTree(refused.body()).at("/error/code").asText()).isEqualTo("invalid_api_key");

        String client = key(stack, "no-admin");
        Cli.Result extrapolate = Cli.runWithKey(stack, client, "extrapolate", "--base", "demo-sft", "--aligned",
                "demo-dpo", "--alpha", "2", "--output", "never-written");
        assertThat(extrapolate.exitCode()).isEqualTo(1);
        assertThat(extrapolate.stderr()).contains("PERMISSION_DENIED", "needs the admin role");
        assertThat(stack.store.resolve("never-written")).doesNotExist();
        Cli.Result keyless = Cli.runWithKey(stack, null, "models", "list");
        assertThat(keyless.stderr()).contains("UNAUTHENTICATED", "needs an API key");

        HttpResponse<String> models = get(stack, "/v1/models", client);
        assertThat(models.statusCode()).isEqualTo(200);
        assertThat(models.body()).contains("\"demo-vlm\"", "\"demo-sft\"").doesNotContain("\"demo-clip\"");
    }

    @Test
    void theOpenAiClientStreamsAChatCompletionWithAnImage(Stack stack) throws Exception {
        OpenAIClient openai = client(stack, key(stack, "vlm"));
        String image = "data:image/png;base64," + Base64.getEncoder().encodeToString(Files.readAllBytes(
                stack.root.resolve("examples/images/demo.png")));
        ChatCompletionCreateParams params = ChatCompletionCreateParams.builder().model("demo-vlm")
                .addUserMessageOfArrayOfContentParts(List.of(
                        ChatCompletionContentPart.ofText(ChatCompletionContentPartText.builder()
                                .text("What is in the image?").build()),
                        ChatCompletionContentPart.ofImageUrl(ChatCompletionContentPartImage.builder().imageUrl(
                                ChatCompletionContentPartImage.ImageUrl.builder().url(image).build()).build())))
                .maxCompletionTokens(12L).temperature(0.0)
                .streamOptions(com.openai.models.chat.completions.ChatCompletionStreamOptions.builder()
                        .includeUsage(true).build())
                .build();
        StringBuilder streamed = new StringBuilder();
        List<String> finishes = new ArrayList<>();
        AtomicReference<Long> completionTokens = new AtomicReference<>();
        AtomicReference<Long> promptTokens = new AtomicReference<>();
        try (StreamResponse<ChatCompletionChunk> stream = openai.chat().completions().createStreaming(params)) {
            stream.stream().forEach(chunk -> {
                chunk.choices().forEach(choice -> {
                    choice.delta().content().ifPresent(streamed::append);
                    choice.finishReason().ifPresent(f -> finishes.add(f.asString()));
                });
                chunk.usage().ifPresent(u -> {
                    completionTokens.set(u.completionTokens());
                    promptTokens.set(u.promptTokens());
                });
            });
        }
        assertThat(finishes).hasSize(1).first().isIn("length", "stop");
        assertThat(completionTokens.get()).isBetween(1L, 12L);
        assertThat(promptTokens.get()).isGreaterThan(16);     // the image's 16 prefix positions and the text

        // The same request, not streamed: the same greedy answer.
        ChatCompletion whole = openai.chat().completions().create(params.toBuilder().streamOptions(
                (com.openai.models.chat.completions.ChatCompletionStreamOptions) null).build());
        assertThat(whole.choices()).hasSize(1);
        assertThat(whole.choices().getFirst().message().content().orElse("")).isEqualTo(streamed.toString());
        assertThat(whole.usage().orElseThrow().completionTokens()).isEqualTo(completionTokens.get());
    }

    @Test
    void chatAndTextCompletionsTakeOpenAisSamplingSettings(Stack stack) throws Exception {
        OpenAIClient openai = client(stack, key(stack, "sampling"));
        ChatCompletion chat = openai.chat().completions().create(ChatCompletionCreateParams.builder()
                .model("demo-sft").addSystemMessage("Be brief.").addUserMessage("Name a color.")
                .n(2L).seed(7L).temperature(0.8).topP(0.95).maxCompletionTokens(6L).logprobs(true).topLogprobs(2L)
                .presencePenalty(0.1).frequencyPenalty(0.1).stopOfStrings(List.of("\n\n")).build());
        assertThat(chat.choices()).hasSize(2);
        long generated = 0;
        for (ChatCompletion.Choice choice : chat.choices()) {
            var logprobs = choice.logprobs().orElseThrow().content().orElseThrow();
            assertThat(logprobs).isNotEmpty().allSatisfy(lp -> assertThat(lp.topLogprobs()).hasSize(2));
            generated += logprobs.size();
        }
        assertThat(chat.usage().orElseThrow().completionTokens()).isEqualTo(generated);

        Completion text = openai.completions().create(CompletionCreateParams.builder()
                .model(CompletionCreateParams.Model.of("demo-sft")).prompt("Once upon a time").maxTokens(5L)
                .temperature(0.0).build());
        assertThat(text.choices()).hasSize(1);
        assertThat(text.choices().getFirst().finishReason().asString()).isIn("length", "stop");
        assertThat(text.usage().orElseThrow().completionTokens()).isBetween(1L, 5L);

        assertThatThrownBy(() -> openai.chat().completions().create(ChatCompletionCreateParams.builder()
                .model("no-such-model").addUserMessage("hi").build()))
                .isInstanceOf(com.openai.errors.NotFoundException.class).hasMessageContaining("no-such-model");
    }

    @Test
    void aClientThatLeavesMidStreamFreesItsSlot(Stack stack) throws Exception {
        OpenAIClient openai = client(stack, key(stack, "leaver"));
        double cancelledBefore = inferenceMetric(stack, "expo_inference_requests_total", LONG_MODEL,
                "finish_reason=\"cancelled\"");
        try (StreamResponse<com.openai.models.completions.Completion> stream = openai.completions().createStreaming(
                longCompletion())) {
            awaitMetric(stack, "expo_inference_batch_running", value -> value > 0);   // generating now
        }   // closing the stream closes its connection mid-way (the whole generation takes several seconds)
        awaitMetric(stack, "expo_inference_batch_running", value -> value == 0);
        String requests = stack.metrics("inference-service").lines().filter(l -> l.startsWith(
                "expo_inference_requests_total") && l.contains(LONG_MODEL)).toList().toString();
        assertThat(inferenceMetric(stack, "expo_inference_requests_total", LONG_MODEL, "finish_reason=\"cancelled\""))
                .as(requests).isEqualTo(cancelledBefore + 1);
    }

    private static void awaitMetric(Stack stack, String name, java.util.function.DoublePredicate until)
            throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        double value = inferenceMetric(stack, name, LONG_MODEL);
        while (!until.test(value) && System.nanoTime() < deadline) {
            Thread.sleep(20);
            value = inferenceMetric(stack, name, LONG_MODEL);
        }
        assertThat(until.test(value)).as(name + " of " + LONG_MODEL + " is " + value).isTrue();
    }

    private static CompletionCreateParams longCompletion() {
        return CompletionCreateParams.builder().model(CompletionCreateParams.Model.of(LONG_MODEL))
                .prompt("Tell me everything").maxTokens(1800L).temperature(0.0)
                .putAdditionalBodyProperty("ignore_eos", JsonValue.from(true)).build();
    }

    @Test
    void aQuotaTripsAndRecovers(Stack stack) throws Exception {
        String key = key(stack, "quota", "--requests-per-minute", "60", "--concurrent-streams", "1");
        OpenAIClient openai = client(stack, key);
        // One stream open: a second is refused, and is let in once the first has gone.
        try (StreamResponse<com.openai.models.completions.Completion> first = openai.completions().createStreaming(
                longCompletion())) {
            first.stream().iterator().next();
            assertThatThrownBy(() -> openai.completions().create(CompletionCreateParams.builder()
                    .model(CompletionCreateParams.Model.of("demo-sft")).prompt("hi").maxTokens(2L).build()))
                    .isInstanceOfSatisfying(RateLimitException.class, e -> assertThat(e.getMessage())
                            .contains("streams open"));
        }
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        Completion after = null;
        while (after == null) {
            try {
                after = openai.completions().create(CompletionCreateParams.builder()
                        .model(CompletionCreateParams.Model.of("demo-sft")).prompt("hi").maxTokens(2L).build());
            } catch (RateLimitException stillOpen) {
                if (System.nanoTime() > deadline) {
                    throw stillOpen;
                }
                Thread.sleep(100);
            }
        }
        // 60 requests a minute: the bucket empties, says when to come back, and one request is back a second later.
        HttpResponse<String> response = null;
        for (int i = 0; i < 80; i++) {
            response = get(stack, "/v1/models", key);
            if (response.statusCode() == 429) {
                break;
            }
        }
        assertThat(response.statusCode()).isEqualTo(429);
        assertThat(response.headers().firstValue("retry-after")).hasValue("1");
        assertThat(JSON.readTree(response.body()).at("/error/code").asText()).isEqualTo("rate_limit_exceeded");
        Thread.sleep(1100);
        assertThat(get(stack, "/v1/models", key).statusCode()).isEqualTo(200);
    }

    @Test
    void anAbSplitServesBothArmsStickilyAndShowsItsCounts(Stack stack) throws Exception {
        String split = "chat-ab-" + System.nanoTime();
        Cli.Result put = Cli.run(stack, "ab", "put", split, "--arm", "sft=demo-sft", "--arm", "dpo=demo-dpo");
        assertThat(put.exitCode()).as(put.toString()).isZero();
        OpenAIClient openai = client(stack, key(stack, "ab"));
        Map<String, Integer> served = new HashMap<>();
        Map<String, String> armOf = new HashMap<>();
        for (int i = 0; i < 24; i++) {
            String user = "user-" + i;
            ChatCompletion completion = openai.chat().completions().create(ChatCompletionCreateParams.builder()
                    .model(split).addUserMessage("Hello").maxCompletionTokens(2L).user(user).build());
            JsonValue expo = completion._additionalProperties().get("expo");
            String arm = JSON.readTree(JSON.writeValueAsString(expo.convert(Object.class))).get("arm").asText();
            served.merge(arm, 1, Integer::sum);
            armOf.put(user, arm);
            assertThat(completion.model()).isEqualTo(split);
        }
        assertThat(served.keySet()).containsExactlyInAnyOrder("sft", "dpo");
        // Sticky: the same user meets the same arm.
        for (String user : List.of("user-0", "user-1", "user-2")) {
            ChatCompletion again = openai.chat().completions().create(ChatCompletionCreateParams.builder()
                    .model(split).addUserMessage("Again").maxCompletionTokens(2L).user(user).build());
            String arm = JSON.readTree(JSON.writeValueAsString(again._additionalProperties().get("expo")
                    .convert(Object.class))).get("arm").asText();
            assertThat(arm).as(user).isEqualTo(armOf.get(user));
            served.merge(arm, 1, Integer::sum);
        }
        // gRPC Generate routes through the split too, and says which arm served it.
        AtomicReference<Metadata> headers = new AtomicReference<>();
        Metadata user = new Metadata();
        user.put(Metadata.Key.of("x-expo-user", Metadata.ASCII_STRING_MARSHALLER), "user-0");
        InferenceServiceGrpc.newBlockingStub(stack.gateway()).withInterceptors(
                        MetadataUtils.newAttachHeadersInterceptor(user),
                        MetadataUtils.newCaptureMetadataInterceptor(headers, new AtomicReference<>()))
                .withDeadlineAfter(30, TimeUnit.SECONDS)
                .generate(GenerateRequest.newBuilder().setModel(split).setText("Hi")
                        .setSampling(SamplingParams.newBuilder().setMaxNewTokens(2)).build())
                .forEachRemaining(r -> { });
        String grpcArm = headers.get().get(Metadata.Key.of("x-expo-arm", Metadata.ASCII_STRING_MARSHALLER));
        assertThat(grpcArm).isEqualTo(armOf.get("user-0"));
        served.merge(grpcArm, 1, Integer::sum);

        Cli.Result show = Cli.run(stack, "ab", "show", split, "--json");
        assertThat(show.exitCode()).as(show.toString()).isZero();
        Map<String, Integer> counted = new HashMap<>();
        for (JsonNode counts : JSON.readTree(show.stdout()).get("counts")) {
            counted.put(counts.get("arm").asText(), counts.get("requests").asInt());
            assertThat(counts.get("errors").asInt()).isZero();
        }
        assertThat(counted).isEqualTo(served);
        Cli.Result list = Cli.run(stack, "ab");
        assertThat(list.stdout()).contains(split, "sft", "dpo", "REQUESTS");
    }

    /** A sample of the inference service's metrics for a model (0 when absent). */
    private static double inferenceMetric(Stack stack, String name, String model, String... labels) throws Exception {
        Matcher matcher = Pattern.compile("^" + Pattern.quote(name) + "\\{([^}]*)} (\\S+)$", Pattern.MULTILINE)
                .matcher(stack.metrics("inference-service"));
        double total = 0;
        while (matcher.find()) {
            boolean matches = matcher.group(1).contains("model=\"" + model + "\"");
            for (String label : labels) {
                matches &= matcher.group(1).contains(label);
            }
            if (matches) {
                total += Double.parseDouble(matcher.group(2));
            }
        }
        return total;
    }
}

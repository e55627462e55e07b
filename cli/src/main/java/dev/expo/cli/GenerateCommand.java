package dev.expo.cli;

import com.google.protobuf.ByteString;
import dev.expo.api.v1.ChatMessage;
import dev.expo.api.v1.ChatMessages;
import dev.expo.api.v1.GenerateRequest;
import dev.expo.api.v1.GenerateResponse;
import dev.expo.api.v1.InferenceServiceGrpc;
import dev.expo.api.v1.SamplingParams;
import dev.expo.api.v1.TokenIds;
import io.grpc.CallOptions;
import io.grpc.ClientCall;
import io.grpc.ManagedChannel;
import io.grpc.stub.ClientCalls;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;

@Command(name = "generate", sortOptions = false,
        description = {"Generate text (optionally from an image), streamed to the terminal as it is produced.",
            "Unset sampling values come from the model's generation_config.json, then the server (temperature 1);",
            "--temperature 0 is greedy."})
public class GenerateCommand implements Callable<Integer> {

    @Mixin
    ModelOptions model;

    @ArgGroup(exclusive = true, multiplicity = "1")
    Input input;

    static class Input {
        @Option(names = "--prompt", paramLabel = "TEXT", description = "A text prompt (BOS added by the tokenizer).")
        String text;

        @Option(names = {"--prompt-ids", "--ids"}, paramLabel = "1,2,3", description = "The prompt as token ids "
                + "(--ids, as score calls it, works too).")
        String ids;

        @Option(names = "--messages", paramLabel = "FILE", description = "A conversation: a JSON array of "
                + "{\"role\": ..., \"content\": ...} rendered by the model's chat template (- reads stdin).")
        Path messages;
    }

    @Option(names = "--chat", description = "Render --prompt as a user turn through the model's chat template.")
    boolean chat;

    @Option(names = "--system", paramLabel = "TEXT", description = "With --chat: a system turn first.")
    String system;

    @Option(names = "--no-generation-prompt", description = "With --chat or --messages: do not open the assistant's "
            + "turn (continue the last message instead).")
    boolean noGenerationPrompt;

    @Option(names = "--image", paramLabel = "FILE", description = "A PNG or JPEG image (multimodal models).")
    Path image;

    @Option(names = "--max-new-tokens", paramLabel = "N") Integer maxNewTokens;
    @Option(names = "--temperature", paramLabel = "T") Float temperature;
    @Option(names = "--top-p", paramLabel = "P") Float topP;
    @Option(names = "--top-k", paramLabel = "K") Integer topK;
    @Option(names = "--min-p", paramLabel = "P") Float minP;
    @Option(names = "--repetition-penalty", paramLabel = "R") Float repetitionPenalty;
    @Option(names = "--frequency-penalty", paramLabel = "F") Float frequencyPenalty;
    @Option(names = "--presence-penalty", paramLabel = "P") Float presencePenalty;
    @Option(names = "--no-repeat-ngram-size", paramLabel = "N") Integer noRepeatNgramSize;
    @Option(names = "--stop", paramLabel = "TEXT", description = "A stop sequence (repeatable); not printed.")
    List<String> stop = new ArrayList<>();
    @Option(names = "--stop-token-ids", paramLabel = "1,2", description = "Extra token ids that end generation.")
    String stopTokenIds;
    @Option(names = "--seed", paramLabel = "N") Long seed;
    @Option(names = "--ignore-eos", description = "Keep generating past end-of-sequence tokens.") boolean ignoreEos;
    @Option(names = "--logprobs", paramLabel = "K", description = "Return each token's logprob and K alternatives.")
    Integer logprobs;

    @Option(names = "--json", description = "Print one line at the end: {\"token_ids\":[...],\"text\":\"...\","
            + "\"finish_reason\":\"...\"} (generated tokens only).")
    boolean json;

    @Option(names = "--timeout", paramLabel = "SECONDS", description = "Give up after this long (and stop the "
            + "generation).")
    Double timeoutSeconds;

    @Override
    public Integer call() {
        GenerateRequest request = request();
        ManagedChannel channel = GatewayOptions.open();
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        CallOptions options = timeoutSeconds == null ? CallOptions.DEFAULT
                : CallOptions.DEFAULT.withDeadlineAfter((long) (timeoutSeconds * 1000), TimeUnit.MILLISECONDS);
        ClientCall<GenerateRequest, GenerateResponse> call =
                channel.newCall(InferenceServiceGrpc.getGenerateMethod(), options);
        Thread cancelOnExit = new Thread(() -> call.cancel("interrupted", null));
        Runtime.getRuntime().addShutdownHook(cancelOnExit);
        StringBuilder text = new StringBuilder();
        List<Integer> ids = new ArrayList<>();
        List<Map<String, Object>> tokenLogprobs = new ArrayList<>();
        GenerateResponse last = null;
        try {
            Iterator<GenerateResponse> responses = ClientCalls.blockingServerStreamingCall(call, request);
            while (responses.hasNext()) {
                GenerateResponse response = responses.next();
                text.append(response.getText());
                ids.addAll(response.getTokenIdsList());
                response.getLogprobsList().forEach(lp -> {
                    Map<String, Object> entry = new LinkedHashMap<>();
                    entry.put("token_id", lp.getTokenId());
                    entry.put("logprob", lp.getLogprob());
                    entry.put("top", lp.getTopList().stream().map(t -> List.of(t.getTokenId(), t.getLogprob()))
                            .toList());
                    tokenLogprobs.add(entry);
                });
                if (!json && !response.getText().isEmpty()) {
                    out.print(response.getText());
                    out.flush();
                }
                last = response;
            }
        } finally {
            GatewayOptions.close(channel);
            try {
                Runtime.getRuntime().removeShutdownHook(cancelOnExit);
            } catch (IllegalStateException exiting) {
                // The hook runs.
            }
        }
        String reason = last == null ? "unknown"
                : last.getFinishReason().name().replace("FINISH_REASON_", "").toLowerCase();
        if (json) {
            Map<String, Object> result = new LinkedHashMap<>();
            result.put("token_ids", ids);
            result.put("text", text.toString());
            result.put("finish_reason", reason);
            if (last != null && last.hasUsage()) {
                result.put("prompt_tokens", last.getUsage().getPromptTokens());
                result.put("cached_prompt_tokens", last.getUsage().getCachedPromptTokens());
                result.put("generated_tokens", last.getUsage().getGeneratedTokens());
            }
            if (logprobs != null) {
                result.put("logprobs", tokenLogprobs);
            }
            out.println(Json.of(result));
        } else {
            out.println();
            if (last != null && last.hasUsage()) {
                var usage = last.getUsage();
                double seconds = usage.getTotalTime().getSeconds() + usage.getTotalTime().getNanos() / 1e9;
                String cached = usage.getCachedPromptTokens() == 0 ? ""
                        : " (" + usage.getCachedPromptTokens() + " cached)";
                System.err.printf("[%s; %d prompt%s + %d generated tokens in %.2f s]%n", reason,
                        usage.getPromptTokens(), cached, usage.getGeneratedTokens(), seconds);
            }
        }
        return 0;
    }

    private GenerateRequest request() {
        GenerateRequest.Builder request = GenerateRequest.newBuilder().setModel(model.model)
                .setImage(ByteString.copyFrom(ModelOptions.readImage(image)));
        if (model.adapter != null) {
            request.setAdapter(model.adapter);
        }
        if (model.adapterScale != null) {
            request.setAdapterScale(model.adapterScale);
        }
        if ((input.ids != null || input.messages != null) && (chat || system != null)) {
            throw new CliException("--chat and --system go with --prompt TEXT (--messages holds the whole "
                    + "conversation)", 2);
        }
        if (noGenerationPrompt && !chat && input.messages == null) {
            throw new CliException("--no-generation-prompt goes with --chat or --messages", 2);
        }
        if (input.ids != null) {
            request.setTokenIds(TokenIds.newBuilder().addAllIds(ModelOptions.ids(input.ids, "--prompt-ids")));
        } else if (input.messages != null) {
            request.setChat(ChatFile.read(input.messages, !noGenerationPrompt));
        } else if (chat) {
            ChatMessages.Builder messages = ChatMessages.newBuilder().setAddGenerationPrompt(!noGenerationPrompt);
            if (system != null) {
                messages.addMessages(ChatMessage.newBuilder().setRole("system").setContent(system));
            }
            messages.addMessages(ChatMessage.newBuilder().setRole("user").setContent(input.text));
            request.setChat(messages);
        } else {
            request.setText(input.text);
        }
        SamplingParams.Builder sampling = SamplingParams.newBuilder().addAllStop(stop).setIgnoreEos(ignoreEos);
        if (maxNewTokens != null) sampling.setMaxNewTokens(maxNewTokens);
        if (temperature != null) sampling.setTemperature(temperature);
        if (topP != null) sampling.setTopP(topP);
        if (topK != null) sampling.setTopK(topK);
        if (minP != null) sampling.setMinP(minP);
        if (repetitionPenalty != null) sampling.setRepetitionPenalty(repetitionPenalty);
        if (frequencyPenalty != null) sampling.setFrequencyPenalty(frequencyPenalty);
        if (presencePenalty != null) sampling.setPresencePenalty(presencePenalty);
        if (noRepeatNgramSize != null) sampling.setNoRepeatNgramSize(noRepeatNgramSize);
        if (seed != null) sampling.setSeed(seed);
        if (stopTokenIds != null) sampling.addAllStopTokenIds(ModelOptions.ids(stopTokenIds, "--stop-token-ids"));
        request.setSampling(sampling);
        if (logprobs != null) {
            request.setLogprobs(true).setTopLogprobs(logprobs);
        }
        return request.build();
    }
}

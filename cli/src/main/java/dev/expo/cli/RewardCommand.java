package dev.expo.cli;

import dev.expo.api.v1.InferenceServiceGrpc;
import dev.expo.api.v1.PromptResponse;
import dev.expo.api.v1.RewardInput;
import dev.expo.api.v1.RewardPosition;
import dev.expo.api.v1.RewardRequest;
import dev.expo.api.v1.RewardResponse;
import dev.expo.api.v1.RewardScore;
import dev.expo.api.v1.TokenIds;
import io.grpc.ManagedChannel;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;

@Command(name = "reward", description = {"The reward a reward model (a sequence classifier with one label) gives a",
    "response to a prompt, a conversation, a text or token ids."})
public class RewardCommand implements Callable<Integer> {

    @Option(names = "--model", required = true, paramLabel = "NAME", description = "A reward model of the store.")
    String model;

    @ArgGroup(exclusive = true, multiplicity = "1")
    Input input;

    static class Input {
        @ArgGroup(exclusive = false)
        PromptAndResponse promptResponse;

        @Option(names = "--messages", paramLabel = "FILE", description = "A conversation: a JSON array of "
                + "{\"role\": ..., \"content\": ...} rendered by the reward model's chat template (- reads stdin).")
        Path messages;

        @Option(names = "--text", paramLabel = "TEXT", description = "Text as the tokenizer encodes it, no template.")
        String text;

        @Option(names = "--ids", paramLabel = "1,2,3", description = "Token ids.")
        String ids;
    }

    static class PromptAndResponse {
        @Option(names = "--prompt", required = true, paramLabel = "TEXT", description = "The user turn.")
        String prompt;

        @Option(names = "--response", required = true, paramLabel = "TEXT", description = "The assistant's "
                + "response (both go through the chat template).")
        String response;
    }

    @Option(names = "--last-token", description = "Score the input's last token, not the token transformers "
            + "pools (the one before the first pad id, which for a model whose pad is </s> ends the first turn).")
    boolean lastToken;

    @Option(names = "--json", description = "{\"reward\": R, \"position\": P, \"input_tokens\": N}")
    boolean json;

    @Override
    public Integer call() {
        RewardInput.Builder in = RewardInput.newBuilder();
        if (input.promptResponse != null) {
            in.setPromptResponse(PromptResponse.newBuilder().setPrompt(input.promptResponse.prompt)
                    .setResponse(input.promptResponse.response));
        } else if (input.messages != null) {
            in.setChat(ChatFile.read(input.messages, false));
        } else if (input.ids != null) {
            in.setTokenIds(TokenIds.newBuilder().addAllIds(ModelOptions.ids(input.ids, "--ids")));
        } else {
            in.setText(input.text);
        }
        RewardRequest request = RewardRequest.newBuilder().setModel(model).addInputs(in)
                .setPosition(lastToken ? RewardPosition.REWARD_POSITION_LAST_TOKEN : RewardPosition.REWARD_POSITION_HF)
                .build();
        ManagedChannel channel = GatewayOptions.open();
        RewardResponse response;
        try {
            response = InferenceServiceGrpc.newBlockingStub(channel).withDeadlineAfter(10, TimeUnit.MINUTES)
                    .reward(request);
        } finally {
            GatewayOptions.close(channel);
        }
        RewardScore score = response.getScores(0);
        if (json) {
            Map<String, Object> out = new LinkedHashMap<>();
            out.put("reward", score.getReward());
            out.put("position", score.getPosition());
            out.put("input_tokens", score.getInputTokens());
            System.out.println(Json.of(out));
        } else {
            System.out.printf("reward %.6f (token %d of %d)%n", score.getReward(), score.getPosition(),
                    score.getInputTokens());
        }
        return 0;
    }
}

package dev.expo.cli;

import com.google.protobuf.ByteString;
import dev.expo.api.v1.InferenceServiceGrpc;
import dev.expo.api.v1.PositionScore;
import dev.expo.api.v1.ScoreRequest;
import dev.expo.api.v1.ScoreResponse;
import dev.expo.api.v1.TokenIds;
import dev.expo.api.v1.TokenLogprob;
import io.grpc.ManagedChannel;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;

@Command(name = "score", description = {"Log-probabilities of a token sequence: position i scores the token after it,",
    "with the top alternatives."})
public class ScoreCommand implements Callable<Integer> {

    @Mixin
    ModelOptions model;

    @ArgGroup(exclusive = true, multiplicity = "1")
    Input input;

    static class Input {
        @Option(names = {"--ids", "--prompt-ids"}, paramLabel = "1,2,3", description = "Token ids (--prompt-ids, "
                + "as generate calls it, works too).")
        String ids;

        @Option(names = "--prompt", paramLabel = "TEXT", description = "Text (encoded with the model's tokenizer).")
        String text;

        @Option(names = "--messages", paramLabel = "FILE", description = "A conversation: a JSON array of "
                + "{\"role\": ..., \"content\": ...} rendered by the model's chat template (- reads stdin).")
        Path messages;
    }

    @Option(names = "--add-generation-prompt", description = "With --messages: end with the assistant turn's "
            + "opening (off: score the conversation as it is).")
    boolean addGenerationPrompt;

    @Option(names = "--image", paramLabel = "FILE", description = "A PNG or JPEG image (multimodal models).")
    Path image;

    @Option(names = "--top-logprobs", paramLabel = "K", defaultValue = "0", description = "Alternatives per position.")
    int topLogprobs;

    @Option(names = "--json", description = "{\"positions\":[{\"token_id\":ID|null,\"logprob\":LP|null,"
            + "\"top\":[[id,logprob],...]}]}")
    boolean json;

    @Override
    public Integer call() {
        ScoreRequest.Builder request = ScoreRequest.newBuilder().setModel(model.model)
                .setTopLogprobs(topLogprobs).setImage(ByteString.copyFrom(ModelOptions.readImage(image)));
        if (model.adapter != null) {
            request.setAdapter(model.adapter);
        }
        if (model.adapterScale != null) {
            request.setAdapterScale(model.adapterScale);
        }
        if (addGenerationPrompt && input.messages == null) {
            throw new CliException("--add-generation-prompt goes with --messages", 2);
        }
        if (input.ids != null) {
            request.setTokenIds(TokenIds.newBuilder().addAllIds(ModelOptions.ids(input.ids, "--ids")));
        } else if (input.messages != null) {
            request.setChat(ChatFile.read(input.messages, addGenerationPrompt));
        } else {
            request.setText(input.text);
        }
        ManagedChannel channel = GatewayOptions.open();
        ScoreResponse response;
        try {
            response = InferenceServiceGrpc.newBlockingStub(channel).withDeadlineAfter(10, TimeUnit.MINUTES)
                    .score(request.build());
        } finally {
            GatewayOptions.close(channel);
        }
        if (json) {
            List<Map<String, Object>> positions = new ArrayList<>();
            for (PositionScore position : response.getPositionsList()) {
                Map<String, Object> entry = new LinkedHashMap<>();
                entry.put("token_id", position.hasTokenId() ? position.getTokenId() : null);
                entry.put("logprob", position.hasLogprob() ? position.getLogprob() : null);
                List<List<Number>> top = new ArrayList<>();
                for (TokenLogprob t : position.getTopList()) {
                    top.add(List.of(t.getTokenId(), t.getLogprob()));
                }
                entry.put("top", top);
                positions.add(entry);
            }
            System.out.println(Json.of(Map.of("positions", positions)));
            return 0;
        }
        double total = 0;
        System.out.printf("%-6s %-8s %12s  %s%n", "POS", "NEXT", "LOGPROB", "TOP");
        for (int i = 0; i < response.getPositionsCount(); i++) {
            PositionScore p = response.getPositions(i);
            StringBuilder top = new StringBuilder();
            for (TokenLogprob t : p.getTopList()) {
                top.append(String.format("%d:%.4f ", t.getTokenId(), t.getLogprob()));
            }
            System.out.printf("%-6d %-8s %12s  %s%n", i, p.hasTokenId() ? p.getTokenId() : "-",
                    p.hasLogprob() ? String.format("%.6f", p.getLogprob()) : "-", top.toString().trim());
            total += p.getLogprob();
        }
        System.out.printf("sum of logprobs: %.6f over %d tokens%n", total, Math.max(0, response.getPositionsCount() - 1));
        return 0;
    }
}

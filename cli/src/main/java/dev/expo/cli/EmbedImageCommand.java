package dev.expo.cli;

import com.google.protobuf.ByteString;
import dev.expo.api.v1.EmbedImageRequest;
import dev.expo.api.v1.EmbedImageResponse;
import dev.expo.api.v1.InferenceServiceGrpc;
import io.grpc.ManagedChannel;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;

@Command(name = "embed-image", description = "Vision-tower features of an image: a layer's hidden states "
        + "(transformers' index: 0 = embeddings, -1 = last, -2 = penultimate) or the pooled output.")
public class EmbedImageCommand implements Callable<Integer> {

    @Option(names = "--model", required = true, paramLabel = "NAME", description = "A vision tower or multimodal model.")
    String model;

    @Option(names = "--image", required = true, paramLabel = "FILE", description = "A PNG or JPEG image.")
    Path image;

    @ArgGroup(exclusive = true)
    Output output;

    static class Output {
        @Option(names = "--layer", paramLabel = "L", description = "Hidden states of this layer (default -1).")
        Integer layer;

        @Option(names = "--pooled", description = "The pooled output (post-layernorm class token).")
        boolean pooled;
    }

    @Option(names = "--json", description = "{\"shape\":[...],\"values\":[...]} (row-major).")
    boolean json;

    @Override
    public Integer call() {
        EmbedImageRequest.Builder request = EmbedImageRequest.newBuilder().setModel(model)
                .setImage(ByteString.copyFrom(ModelOptions.readImage(image)));
        if (output != null && output.pooled) {
            request.setPooled(true);
        } else if (output != null && output.layer != null) {
            request.setLayer(output.layer);
        }
        ManagedChannel channel = GatewayOptions.open();
        EmbedImageResponse response;
        try {
            response = InferenceServiceGrpc.newBlockingStub(channel).withDeadlineAfter(5, TimeUnit.MINUTES)
                    .embedImage(request.build());
        } finally {
            GatewayOptions.close(channel);
        }
        if (json) {
            Map<String, Object> out = new LinkedHashMap<>();
            out.put("shape", response.getShapeList());
            out.put("values", response.getValuesList());
            System.out.println(Json.of(out));
        } else {
            System.out.printf("shape %s, %d values; first: %s%n", response.getShapeList(), response.getValuesCount(),
                    response.getValuesList().subList(0, Math.min(8, response.getValuesCount())));
        }
        return 0;
    }
}

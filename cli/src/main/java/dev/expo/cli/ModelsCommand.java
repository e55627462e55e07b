package dev.expo.cli;

import dev.expo.api.v1.InferenceServiceGrpc;
import dev.expo.api.v1.ListModelsRequest;
import dev.expo.api.v1.ListModelsResponse;
import dev.expo.api.v1.ModelInfo;
import io.grpc.ManagedChannel;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;

@Command(name = "models", description = "The models in the store.",
        subcommands = {ModelsCommand.ListModels.class})
public class ModelsCommand {

    @Command(name = "list", description = "List every model in the store with its kind, dtype and size.")
    static class ListModels implements Callable<Integer> {

        @Option(names = "--json", description = "Print one JSON object: {\"models\": [...]}.")
        boolean json;

        @Override
        public Integer call() {
            ManagedChannel channel = GatewayOptions.open();
            List<ModelInfo> models = new ArrayList<>();
            try {
                String token = "";
                do {
                    ListModelsResponse page = InferenceServiceGrpc.newBlockingStub(channel)
                            .withDeadlineAfter(30, TimeUnit.SECONDS)
                            .listModels(ListModelsRequest.newBuilder().setPageToken(token).build());
                    models.addAll(page.getModelsList());
                    token = page.getNextPageToken();
                } while (!token.isEmpty());
            } finally {
                GatewayOptions.close(channel);
            }
            if (json) {
                System.out.println(Json.of(ListModelsResponse.newBuilder().addAllModels(models).build()));
                return 0;
            }
            if (models.isEmpty()) {
                System.out.println("The model store is empty.");
                return 0;
            }
            System.out.printf("%-32s %-16s %-24s %-6s %10s %14s%n", "NAME", "KIND", "ARCHITECTURE", "DTYPE", "SIZE",
                    "PARAMETERS");
            for (ModelInfo model : models) {
                System.out.printf("%-32s %-16s %-24s %-6s %10s %14s%n", model.getName(),
                        model.getKind().name().replace("MODEL_KIND_", "").toLowerCase(),
                        model.getArchitecture().isEmpty() ? "-" : model.getArchitecture(),
                        model.getDtype().name().replace("TENSOR_DTYPE_", "").replace("UNSPECIFIED", "-"),
                        Sizes.bytes(model.getSizeBytes()), String.format("%,d", model.getParameterCount()));
            }
            return 0;
        }
    }
}

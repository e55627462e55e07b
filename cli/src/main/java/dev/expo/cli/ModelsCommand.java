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

/** {@code expo models} alone lists them, as {@code expo models list} does. */
@Command(name = "models", description = "The models in the store (alone: as 'models list').",
        subcommands = {ModelsCommand.ListModels.class, ModelsCommand.Load.class, ModelsCommand.Unload.class})
public class ModelsCommand implements Callable<Integer> {

    @Override
    public Integer call() {
        return new ListModels().call();
    }

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
            System.out.printf("%-32s %-16s %-24s %-6s %10s %14s %s%n", "NAME", "KIND", "ARCHITECTURE", "DTYPE", "SIZE",
                    "PARAMETERS", "LOADED");
            for (ModelInfo model : models) {
                System.out.printf("%-32s %-16s %-24s %-6s %10s %14s %s%n", model.getName(),
                        model.getKind().name().replace("MODEL_KIND_", "").toLowerCase(),
                        model.getArchitecture().isEmpty() ? "-" : model.getArchitecture(),
                        model.getDtype().name().replace("TENSOR_DTYPE_", "").replace("UNSPECIFIED", "-"),
                        Sizes.bytes(model.getSizeBytes()), String.format("%,d", model.getParameterCount()),
                        model.getLoaded() ? "yes" : "");
            }
            return 0;
        }
    }

    @Command(name = "load", description = "Load a model into the inference service ahead of its first request.")
    static class Load implements Callable<Integer> {
        @picocli.CommandLine.Parameters(paramLabel = "NAME")
        String name;

        @Override
        public Integer call() {
            ManagedChannel channel = GatewayOptions.open();
            try {
                ModelInfo info = InferenceServiceGrpc.newBlockingStub(channel).withDeadlineAfter(10, TimeUnit.MINUTES)
                        .loadModel(dev.expo.api.v1.LoadModelRequest.newBuilder().setModel(name).build());
                System.out.println("loaded " + info.getName() + " (" + Sizes.bytes(info.getSizeBytes()) + ")");
            } finally {
                GatewayOptions.close(channel);
            }
            return 0;
        }
    }

    @Command(name = "unload", description = "Free a model's memory in the inference service.")
    static class Unload implements Callable<Integer> {
        @picocli.CommandLine.Parameters(paramLabel = "NAME")
        String name;

        @Override
        public Integer call() {
            ManagedChannel channel = GatewayOptions.open();
            try {
                InferenceServiceGrpc.newBlockingStub(channel).withDeadlineAfter(1, TimeUnit.MINUTES)
                        .unloadModel(dev.expo.api.v1.UnloadModelRequest.newBuilder().setModel(name).build());
                System.out.println("unloaded " + name);
            } finally {
                GatewayOptions.close(channel);
            }
            return 0;
        }
    }
}

package dev.expo.cli;

import dev.expo.cli.demo.DemoModels;
import dev.expo.common.store.ModelStore;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "demo", description = "The embedded demo.", subcommands = DemoCommand.Seed.class)
public class DemoCommand {

    @Command(name = "seed", description = {"Write the demo models into the model store (local; no service needed):",
        "  " + DemoModels.SFT + " and " + DemoModels.ALIGNED + ", a tiny LLaMA pair for extrapolation."})
    static class Seed implements Callable<Integer> {

        @Option(names = "--store", paramLabel = "DIR",
                description = "The model store (default: $EXPO_MODEL_STORE, else ./model-store).")
        Path store;

        @Override
        public Integer call() {
            Path root = store != null ? store : Path.of(System.getenv().getOrDefault("EXPO_MODEL_STORE",
                    "model-store"));
            List<String> written = DemoModels.seed(new ModelStore(root));
            System.out.println(written.isEmpty() ? "The demo models are already in " + root.toAbsolutePath()
                    : "Wrote " + String.join(", ", written) + " to " + root.toAbsolutePath());
            return 0;
        }
    }
}

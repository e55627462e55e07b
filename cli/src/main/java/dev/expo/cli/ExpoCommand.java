package dev.expo.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(name = "expo",
        mixinStandardHelpOptions = true,
        scope = CommandLine.ScopeType.INHERIT,   // --help (and --version) on every subcommand too
        versionProvider = VersionProvider.class,
        description = "ExPO: model extrapolation for LLM alignment. Talks to the expo gateway "
                + "(--gateway, or EXPO_GATEWAY; default 127.0.0.1:50051).",
        subcommands = {
            HealthCommand.class,
            ModelsCommand.class,
            ExtrapolateCommand.class,
            JobsCommand.class,
            TrainCommand.class,
            GenerateCommand.class,
            ScoreCommand.class,
            RewardCommand.class,
            EvalCommand.class,
            SweepCommand.class,
            EmbedImageCommand.class,
            DatasetsCommand.class,
            KeysCommand.class,
            AbCommand.class,
            DemoCommand.class,
            picocli.CommandLine.HelpCommand.class
        })
public class ExpoCommand {

    @Option(names = "--gateway", paramLabel = "HOST:PORT", scope = CommandLine.ScopeType.INHERIT,
            description = "The gateway's address (default: $EXPO_GATEWAY, else " + GatewayOptions.DEFAULT_GATEWAY
                    + ").")
    void setGateway(String address) {
        GatewayOptions.select(address);
    }
}

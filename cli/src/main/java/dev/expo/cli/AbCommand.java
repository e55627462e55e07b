package dev.expo.cli;

import dev.expo.api.v1.ArmCounts;
import dev.expo.api.v1.DeleteSplitRequest;
import dev.expo.api.v1.GetSplitRequest;
import dev.expo.api.v1.ListSplitsRequest;
import dev.expo.api.v1.ListSplitsResponse;
import dev.expo.api.v1.PutSplitRequest;
import dev.expo.api.v1.Split;
import dev.expo.api.v1.SplitArm;
import dev.expo.api.v1.SplitServiceGrpc;
import io.grpc.ManagedChannel;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;

/** Online A/B splits on the gateway: a virtual model name shared among arms, sticky per caller. */
@Command(name = "ab", description = "Online A/B splits (alone: as 'ab list', with each arm's counts).",
        subcommands = {AbCommand.Put.class, AbCommand.ListSplits.class, AbCommand.Show.class, AbCommand.Delete.class})
public class AbCommand implements Callable<Integer> {

    @Override
    public Integer call() {
        return new ListSplits().call();
    }

    static <T> T withStub(Function<SplitServiceGrpc.SplitServiceBlockingStub, T> call) {
        ManagedChannel channel = GatewayOptions.open();
        try {
            return call.apply(SplitServiceGrpc.newBlockingStub(channel).withDeadlineAfter(30, TimeUnit.SECONDS));
        } finally {
            GatewayOptions.close(channel);
        }
    }

    @Command(name = "put", description = "Create or replace a split. Each --arm is NAME=MODEL[:ADAPTER[@SCALE]]"
            + "[*WEIGHT], e.g. --arm control=demo-dpo --arm expo=demo-expo*2.")
    static class Put implements Callable<Integer> {
        @Parameters(paramLabel = "NAME", description = "The virtual model name clients ask for.")
        String name;

        @Option(names = "--arm", required = true, paramLabel = "NAME=MODEL[:ADAPTER[@SCALE]][*WEIGHT]")
        List<String> arms;

        @Option(names = "--json")
        boolean json;

        @Override
        public Integer call() {
            PutSplitRequest.Builder request = PutSplitRequest.newBuilder().setName(name);
            for (String arm : arms) {
                request.addArms(parseArm(arm));
            }
            Split split = withStub(stub -> stub.putSplit(request.build()));
            if (json) {
                System.out.println(Json.of(split));
            } else {
                print(split);
            }
            return 0;
        }
    }

    static SplitArm parseArm(String text) {
        int equals = text.indexOf('=');
        if (equals <= 0) {
            throw new CliException("--arm must be NAME=MODEL[:ADAPTER[@SCALE]][*WEIGHT], not \"" + text + "\"", 2);
        }
        SplitArm.Builder arm = SplitArm.newBuilder().setName(text.substring(0, equals)).setWeight(1);
        String rest = text.substring(equals + 1);
        try {
            int star = rest.lastIndexOf('*');
            if (star >= 0) {
                arm.setWeight(Double.parseDouble(rest.substring(star + 1)));
                rest = rest.substring(0, star);
            }
            int colon = rest.indexOf(':');
            if (colon >= 0) {
                String adapter = rest.substring(colon + 1);
                int at = adapter.lastIndexOf('@');
                if (at >= 0) {
                    arm.setAdapterScale(Double.parseDouble(adapter.substring(at + 1)));
                    adapter = adapter.substring(0, at);
                }
                arm.setAdapter(adapter);
                rest = rest.substring(0, colon);
            }
        } catch (NumberFormatException e) {
            throw new CliException("--arm " + text + ": the scale and weight must be numbers", 2);
        }
        return arm.setModel(rest).build();
    }

    @Command(name = "list", description = "Every split, its arms and their counts.")
    static class ListSplits implements Callable<Integer> {
        @Option(names = "--json")
        boolean json;

        @Override
        public Integer call() {
            ListSplitsResponse splits = withStub(stub -> stub.listSplits(ListSplitsRequest.getDefaultInstance()));
            if (json) {
                System.out.println(Json.of(splits));
                return 0;
            }
            if (splits.getSplitsCount() == 0) {
                System.out.println("No A/B splits (bin/expo ab put NAME --arm A=MODEL --arm B=MODEL makes one).");
            }
            splits.getSplitsList().forEach(AbCommand::print);
            return 0;
        }
    }

    @Command(name = "show", description = "One split, its arms and their counts.")
    static class Show implements Callable<Integer> {
        @Parameters(paramLabel = "NAME")
        String name;

        @Option(names = "--json")
        boolean json;

        @Override
        public Integer call() {
            Split split = withStub(stub -> stub.getSplit(GetSplitRequest.newBuilder().setName(name).build()));
            if (json) {
                System.out.println(Json.of(split));
            } else {
                print(split);
            }
            return 0;
        }
    }

    @Command(name = "delete", description = "Remove a split; its name stops routing at once.")
    static class Delete implements Callable<Integer> {
        @Parameters(paramLabel = "NAME")
        String name;

        @Override
        public Integer call() {
            Split split = withStub(stub -> stub.deleteSplit(DeleteSplitRequest.newBuilder().setName(name).build()));
            System.out.println("Deleted split " + split.getName() + ".");
            return 0;
        }
    }

    static void print(Split split) {
        double total = split.getArmsList().stream().mapToDouble(SplitArm::getWeight).sum();
        System.out.println("split " + split.getName() + ":");
        System.out.printf("  %-16s %-28s %6s %9s %7s %9s %10s%n", "ARM", "SERVED BY", "SHARE", "REQUESTS", "ERRORS",
                "TOKENS", "MEAN TIME");
        for (SplitArm arm : split.getArmsList()) {
            ArmCounts counts = split.getCountsList().stream().filter(c -> c.getArm().equals(arm.getName()))
                    .findFirst().orElse(ArmCounts.getDefaultInstance());
            String servedBy = arm.getModel() + (arm.getAdapter().isEmpty() ? "" : " + " + arm.getAdapter()
                    + (arm.hasAdapterScale() ? " @" + arm.getAdapterScale() : ""));
            System.out.printf("  %-16s %-28s %5.1f%% %9d %7d %9d %9.2fs%n", arm.getName(), servedBy,
                    100 * arm.getWeight() / total, counts.getRequests(), counts.getErrors(),
                    counts.getGeneratedTokens(), counts.getMeanLatencySeconds());
        }
    }
}

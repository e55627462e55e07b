package dev.expo.cli;

import dev.expo.api.v1.AccessServiceGrpc;
import dev.expo.api.v1.ApiKey;
import dev.expo.api.v1.CreateKeyRequest;
import dev.expo.api.v1.CreateKeyResponse;
import dev.expo.api.v1.ListKeysRequest;
import dev.expo.api.v1.ListKeysResponse;
import dev.expo.api.v1.Quota;
import dev.expo.api.v1.RevokeKeyRequest;
import dev.expo.api.v1.Role;
import dev.expo.api.v1.WhoAmIRequest;
import io.grpc.ManagedChannel;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;

/** API keys on the gateway (admins): create, list, revoke; whoami for any key. */
@Command(name = "keys", description = "The gateway's API keys (alone: as 'keys list').",
        subcommands = {KeysCommand.Create.class, KeysCommand.ListKeys.class, KeysCommand.Revoke.class,
            KeysCommand.WhoAmI.class})
public class KeysCommand implements Callable<Integer> {

    @Override
    public Integer call() {
        return new ListKeys().call();
    }

    static <T> T withStub(Function<AccessServiceGrpc.AccessServiceBlockingStub, T> call) {
        ManagedChannel channel = GatewayOptions.open();
        try {
            return call.apply(AccessServiceGrpc.newBlockingStub(channel).withDeadlineAfter(30, TimeUnit.SECONDS));
        } finally {
            GatewayOptions.close(channel);
        }
    }

    @Command(name = "create", description = "Create a key; the key itself is printed once (the gateway keeps only "
            + "its hash).")
    static class Create implements Callable<Integer> {
        @Option(names = "--name", required = true, description = "A unique name: letters, digits, '.', '_', '-'.")
        String name;

        @Option(names = "--role", required = true, description = "admin (everything) or client (generate, score, "
                + "embed, reward, evaluate).")
        String role;

        @Option(names = "--requests-per-minute", paramLabel = "N", description = "Default: the gateway's "
                + "(expo.quota.requests-per-minute); 0 = unlimited.")
        Integer requestsPerMinute;

        @Option(names = "--tokens-per-minute", paramLabel = "N", description = "Generated tokens per minute; "
                + "default: the gateway's; 0 = unlimited.")
        Integer tokensPerMinute;

        @Option(names = "--concurrent-streams", paramLabel = "N", description = "Default: the gateway's; 0 = "
                + "unlimited.")
        Integer concurrentStreams;

        @Option(names = "--json", description = "Print {\"key\": ..., \"id\": ..., \"name\": ..., \"role\": ...}.")
        boolean json;

        @Override
        public Integer call() {
            Role parsed = switch (role) {
                case "admin" -> Role.ROLE_ADMIN;
                case "client" -> Role.ROLE_CLIENT;
                default -> throw new CliException("--role must be admin or client, not \"" + role + "\"", 2);
            };
            Quota.Builder quota = Quota.newBuilder();
            if (requestsPerMinute != null) {
                quota.setRequestsPerMinute(requestsPerMinute);
            }
            if (tokensPerMinute != null) {
                quota.setGeneratedTokensPerMinute(tokensPerMinute);
            }
            if (concurrentStreams != null) {
                quota.setConcurrentStreams(concurrentStreams);
            }
            CreateKeyResponse created = withStub(stub -> stub.createKey(CreateKeyRequest.newBuilder().setName(name)
                    .setRole(parsed).setQuota(quota).build()));
            if (json) {
                Map<String, Object> out = new LinkedHashMap<>();
                out.put("key", created.getSecret());
                out.put("id", created.getKey().getId());
                out.put("name", created.getKey().getName());
                out.put("role", role);
                System.out.println(Json.of(out));
                return 0;
            }
            System.out.println(created.getSecret());
            System.err.println("Key " + created.getKey().getId() + " (" + name + ", " + role + ", "
                    + quota(created.getKey().getQuota()) + "). It is shown only this once: keep it now. Use it as "
                    + "EXPO_API_KEY or as an OpenAI client's api key.");
            return 0;
        }
    }

    @Command(name = "list", description = "List the keys (never the keys themselves).")
    static class ListKeys implements Callable<Integer> {
        @Option(names = "--all", description = "Include revoked keys.")
        boolean all;

        @Option(names = "--json", description = "Print {\"keys\": [...]}.")
        boolean json;

        @Override
        public Integer call() {
            ListKeysResponse keys = withStub(stub -> stub.listKeys(ListKeysRequest.newBuilder().setIncludeRevoked(all)
                    .build()));
            if (json) {
                System.out.println(Json.of(keys));
                return 0;
            }
            System.out.printf("%-16s %-24s %-7s %-22s %-9s %s%n", "ID", "NAME", "ROLE", "CREATED", "STATE", "QUOTA");
            for (ApiKey key : keys.getKeysList()) {
                System.out.printf("%-16s %-24s %-7s %-22s %-9s %s%n", key.getId(), key.getName(), role(key.getRole()),
                        Instant.ofEpochSecond(key.getCreatedAt().getSeconds()), key.hasRevokedAt() ? "revoked"
                                : "live", quota(key.getQuota()));
            }
            return 0;
        }
    }

    @Command(name = "revoke", description = "Revoke a key (by id or name): refused from its next call on.")
    static class Revoke implements Callable<Integer> {
        @Parameters(paramLabel = "ID|NAME")
        String key;

        @Option(names = "--json")
        boolean json;

        @Override
        public Integer call() {
            ApiKey revoked = withStub(stub -> stub.revokeKey(RevokeKeyRequest.newBuilder().setKey(key).build()));
            System.out.println(json ? Json.of(revoked) : "Revoked " + revoked.getId() + " (" + revoked.getName()
                    + ").");
            return 0;
        }
    }

    @Command(name = "whoami", description = "The key this command line sends: its id, role and quota.")
    static class WhoAmI implements Callable<Integer> {
        @Option(names = "--json")
        boolean json;

        @Override
        public Integer call() {
            ApiKey me = withStub(stub -> stub.whoAmI(WhoAmIRequest.getDefaultInstance()));
            System.out.println(json ? Json.of(me) : me.getId() + " (" + me.getName() + "), " + role(me.getRole())
                    + ", " + quota(me.getQuota()));
            return 0;
        }
    }

    static String role(Role role) {
        return role == Role.ROLE_ADMIN ? "admin" : role == Role.ROLE_CLIENT ? "client" : "-";
    }

    static String quota(Quota quota) {
        return limit(quota.getRequestsPerMinute()) + " req/min, " + limit(quota.getGeneratedTokensPerMinute())
                + " tokens/min, " + limit(quota.getConcurrentStreams()) + " streams";
    }

    private static String limit(int value) {
        return value == 0 ? "unlimited" : Integer.toString(value);
    }
}

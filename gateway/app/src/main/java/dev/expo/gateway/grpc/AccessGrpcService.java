package dev.expo.gateway.grpc;

import dev.expo.api.v1.AccessService;
import dev.expo.api.v1.ApiKey;
import dev.expo.api.v1.CreateKeyRequest;
import dev.expo.api.v1.CreateKeyResponse;
import dev.expo.api.v1.ListKeysRequest;
import dev.expo.api.v1.ListKeysResponse;
import dev.expo.api.v1.Quota;
import dev.expo.api.v1.RevokeKeyRequest;
import dev.expo.api.v1.Role;
import dev.expo.api.v1.WhoAmIRequest;
import dev.expo.common.ExpoException;
import dev.expo.gateway.access.AccessControl;
import dev.expo.gateway.access.ApiKeys;
import dev.expo.gateway.access.Caller;
import dev.expo.gateway.access.QuotaLimits;
import dev.expo.service.Timestamps;
import io.quarkus.grpc.GrpcService;
import io.smallrye.common.annotation.Blocking;
import io.smallrye.mutiny.Uni;
import jakarta.inject.Inject;

/** Key management over the gateway's key store (admins; WhoAmI for any key). */
@GrpcService
public class AccessGrpcService implements AccessService {

    @Inject
    AccessControl access;

    @Inject
    QuotaLimits defaultQuota;

    @Override
    @Blocking
    public Uni<CreateKeyResponse> createKey(CreateKeyRequest request) {
        return Uni.createFrom().item(() -> {
            dev.expo.gateway.access.Role role = switch (request.getRole()) {
                case ROLE_ADMIN -> dev.expo.gateway.access.Role.ADMIN;
                case ROLE_CLIENT -> dev.expo.gateway.access.Role.CLIENT;
                default -> throw ExpoException.invalidArgument("role", request.getRole(), "must be ROLE_ADMIN or "
                        + "ROLE_CLIENT");
            };
            Quota q = request.getQuota();
            QuotaLimits quota;
            try {
                quota = new QuotaLimits(
                        q.hasRequestsPerMinute() ? q.getRequestsPerMinute() : defaultQuota.requestsPerMinute(),
                        q.hasGeneratedTokensPerMinute() ? q.getGeneratedTokensPerMinute()
                                : defaultQuota.generatedTokensPerMinute(),
                        q.hasConcurrentStreams() ? q.getConcurrentStreams() : defaultQuota.concurrentStreams());
            } catch (IllegalArgumentException e) {
                throw ExpoException.invalidArgument("quota: " + e.getMessage());
            }
            ApiKeys.Created created = access.keys().create(request.getName(), role, quota);
            return CreateKeyResponse.newBuilder().setKey(toProto(created.key())).setSecret(created.secret()).build();
        });
    }

    @Override
    @Blocking
    public Uni<ListKeysResponse> listKeys(ListKeysRequest request) {
        return Uni.createFrom().item(() -> {
            ListKeysResponse.Builder response = ListKeysResponse.newBuilder();
            access.keys().list(request.getIncludeRevoked()).forEach(key -> response.addKeys(toProto(key)));
            return response.build();
        });
    }

    @Override
    @Blocking
    public Uni<ApiKey> revokeKey(RevokeKeyRequest request) {
        return Uni.createFrom().item(() -> toProto(access.keys().revoke(request.getKey())));
    }

    @Override
    public Uni<ApiKey> whoAmI(WhoAmIRequest request) {
        Caller caller = Caller.current();
        if (caller == Caller.OPEN) {
            return Uni.createFrom().item(ApiKey.newBuilder().setId(caller.keyId()).setName(caller.name())
                    .setRole(Role.ROLE_ADMIN).setQuota(Quota.newBuilder().setRequestsPerMinute(0)
                            .setGeneratedTokensPerMinute(0).setConcurrentStreams(0)).build());
        }
        return Uni.createFrom().item(toProto(access.keys().byId(caller.keyId())));
    }

    static ApiKey toProto(dev.expo.gateway.access.ApiKey key) {
        ApiKey.Builder proto = ApiKey.newBuilder().setId(key.id()).setName(key.name()).setPrefix(key.prefix())
                .setRole(key.role() == dev.expo.gateway.access.Role.ADMIN ? Role.ROLE_ADMIN : Role.ROLE_CLIENT)
                .setQuota(Quota.newBuilder().setRequestsPerMinute(key.quota().requestsPerMinute())
                        .setGeneratedTokensPerMinute(key.quota().generatedTokensPerMinute())
                        .setConcurrentStreams(key.quota().concurrentStreams()))
                .setCreatedAt(Timestamps.of(key.createdAt()));
        if (key.revokedAt() != null) {
            proto.setRevokedAt(Timestamps.of(key.revokedAt()));
        }
        return proto.build();
    }
}

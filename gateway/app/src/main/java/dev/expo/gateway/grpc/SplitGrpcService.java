package dev.expo.gateway.grpc;

import dev.expo.api.v1.ArmCounts;
import dev.expo.api.v1.DeleteSplitRequest;
import dev.expo.api.v1.GetSplitRequest;
import dev.expo.api.v1.ListSplitsRequest;
import dev.expo.api.v1.ListSplitsResponse;
import dev.expo.api.v1.PutSplitRequest;
import dev.expo.api.v1.Split;
import dev.expo.api.v1.SplitArm;
import dev.expo.api.v1.SplitService;
import dev.expo.common.ExpoException;
import dev.expo.gateway.ab.SplitTraffic;
import dev.expo.gateway.ab.Splits;
import dev.expo.service.Timestamps;
import io.quarkus.grpc.GrpcService;
import io.smallrye.common.annotation.Blocking;
import io.smallrye.mutiny.Uni;
import jakarta.inject.Inject;

import java.util.ArrayList;
import java.util.List;

/** A/B splits: defined by admins, persisted by the gateway, routed by Generate and the HTTP API. */
@GrpcService
public class SplitGrpcService implements SplitService {

    @Inject
    SplitTraffic traffic;

    @Override
    @Blocking
    public Uni<Split> putSplit(PutSplitRequest request) {
        return Uni.createFrom().item(() -> {
            List<Splits.Arm> arms = new ArrayList<>();
            for (SplitArm arm : request.getArmsList()) {
                arms.add(new Splits.Arm(arm.getName(), arm.getModel(), arm.getAdapter().isEmpty() ? null
                        : arm.getAdapter(), arm.hasAdapterScale() ? arm.getAdapterScale() : null, arm.getWeight()));
            }
            return toProto(traffic.splits().put(request.getName(), arms));
        });
    }

    @Override
    @Blocking
    public Uni<Split> getSplit(GetSplitRequest request) {
        return Uni.createFrom().item(() -> toProto(traffic.splits().get(request.getName()).orElseThrow(
                () -> ExpoException.notFound("no A/B split is named \"" + request.getName() + "\""))));
    }

    @Override
    @Blocking
    public Uni<ListSplitsResponse> listSplits(ListSplitsRequest request) {
        return Uni.createFrom().item(() -> {
            ListSplitsResponse.Builder response = ListSplitsResponse.newBuilder();
            traffic.splits().list().forEach(split -> response.addSplits(toProto(split)));
            return response.build();
        });
    }

    @Override
    @Blocking
    public Uni<Split> deleteSplit(DeleteSplitRequest request) {
        return Uni.createFrom().item(() -> toProto(traffic.splits().delete(request.getName())));
    }

    static Split toProto(Splits.Split split) {
        Split.Builder proto = Split.newBuilder().setName(split.name()).setUpdatedAt(Timestamps.of(split.updatedAt()));
        for (Splits.Arm arm : split.arms()) {
            SplitArm.Builder a = SplitArm.newBuilder().setName(arm.name()).setModel(arm.model())
                    .setWeight(arm.weight());
            if (arm.adapter() != null) {
                a.setAdapter(arm.adapter());
            }
            if (arm.adapterScale() != null) {
                a.setAdapterScale(arm.adapterScale());
            }
            proto.addArms(a);
        }
        for (Splits.Counts c : split.counts()) {
            proto.addCounts(ArmCounts.newBuilder().setArm(c.arm()).setRequests(c.requests()).setErrors(c.errors())
                    .setGeneratedTokens(c.generatedTokens()).setMeanLatencySeconds(c.meanLatencySeconds()));
        }
        return proto.build();
    }
}

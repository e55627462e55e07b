package dev.expo.extrapolation.grpc;

import dev.expo.api.v1.AlphaSchedule;
import dev.expo.api.v1.ExtrapolateRequest;
import dev.expo.api.v1.ExtrapolationSpec;
import dev.expo.api.v1.LayerGroups;
import dev.expo.api.v1.LinearRamp;
import dev.expo.api.v1.PerLayerAlphas;
import dev.expo.api.v1.TensorDtype;
import dev.expo.api.v1.TensorRule;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/** A job reports its request rebuilt from the engine's records: every schedule form comes back as it was sent. */
class ExtrapolationProtoMapperTest {

    static Stream<AlphaSchedule> schedules() {
        return Stream.of(
                AlphaSchedule.newBuilder().setAlpha(12).build(),
                AlphaSchedule.newBuilder().setLayerGroups(LayerGroups.newBuilder().addAlphas(5).addAlphas(10)
                        .addAlphas(15)).setNonlayerAlpha(0).build(),
                AlphaSchedule.newBuilder().setPerLayer(PerLayerAlphas.newBuilder().addAlphas(1.5).addAlphas(-2))
                        .build(),
                AlphaSchedule.newBuilder().setLinearRamp(LinearRamp.newBuilder().setFirst(2).setLast(8))
                        .addRules(TensorRule.newBuilder().setGlob("*embed_tokens*").setAlpha(0))
                        .addRules(TensorRule.newBuilder().setRegex("model\\.layers\\.[0-2]\\..*").setAlpha(3))
                        .build(),
                // Rules alone, no layer part.
                AlphaSchedule.newBuilder().addRules(TensorRule.newBuilder().setGlob("*").setAlpha(4)).build());
    }

    @ParameterizedTest
    @MethodSource("schedules")
    void aRequestSurvivesTheEngineRecords(AlphaSchedule schedule) {
        ExtrapolateRequest request = ExtrapolateRequest.newBuilder()
                .setSpec(ExtrapolationSpec.newBuilder().setBaseModel("sft").setAlignedModel("dpo")
                        .setSchedule(schedule).setOutputDtype(TensorDtype.TENSOR_DTYPE_F32))
                .setOutputModel("out").setOverwrite(true).setMaxShardBytes(1 << 20).build();
        assertThat(ExtrapolationProtoMapper.toProto(ExtrapolationProtoMapper.toRequest(request))).isEqualTo(request);
    }
}

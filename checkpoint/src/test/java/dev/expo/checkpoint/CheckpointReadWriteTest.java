package dev.expo.checkpoint;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

class CheckpointReadWriteTest {

    @Test
    void readsTheBf16ReferenceCheckpoint() {
        try (Checkpoint sft = Checkpoint.open(Fixtures.path("tiny-llama-sft"))) {
            assertThat(sft.isSharded()).isFalse();
            assertThat(sft.tensors()).hasSize(57).allMatch(t -> t.dtype() == DType.BF16);
            assertThat(sft.info("model.embed_tokens.weight").shape()).containsExactly(384, 64);
            assertThat(sft.shards().getFirst().metadata()).containsEntry("format", "pt");
            // bf16 -> f32 is exact and agrees with the fp32 copy after rounding that copy to bf16.
            try (Checkpoint fp32 = Checkpoint.open(Fixtures.path("tiny-llama-sft/fp32"))) {
                float[] wide = fp32.tensor("model.layers.3.mlp.up_proj.weight").toFloats();
                float[] narrow = sft.tensor("model.layers.3.mlp.up_proj.weight").toFloats();
                for (int i = 0; i < wide.length; i++) {
                    assertThat(narrow[i]).isEqualTo(Dtypes.bf16ToFloat(Dtypes.floatToBf16(wide[i])));
                }
            }
        }
    }

    @Test
    void shardedCheckpointHoldsTheSameTensorsAsTheSingleFile() {
        try (Checkpoint single = Checkpoint.open(Fixtures.path("tiny-llama-dpo"));
             Checkpoint sharded = Checkpoint.open(Fixtures.path("tiny-llama-dpo-sharded"))) {
            assertThat(sharded.isSharded()).isTrue();
            assertThat(sharded.shards()).hasSize(2);
            assertThat(sharded.byName().keySet()).containsExactlyInAnyOrderElementsOf(single.byName().keySet());
            for (TensorInfo info : single.tensors()) {
                MemorySegment a = single.tensor(info.name()).bytes();
                MemorySegment b = sharded.tensor(info.name()).bytes();
                assertThat(a.mismatch(b)).as(info.name()).isEqualTo(-1L);
            }
            assertThat(sharded.dataBytes()).isEqualTo(single.dataBytes());
        }
    }

    @Test
    void writerReproducesTheReferenceFileByteForByte(@TempDir Path dir) throws IOException {
        Path reference = Fixtures.path("tiny-llama-dpo/model.safetensors");
        Path copy = dir.resolve("model.safetensors");
        try (SafetensorsFile file = SafetensorsFile.open(reference)) {
            List<Tensor> tensors = new ArrayList<>();
            // Hand the tensors over in reverse order: the layout, not the caller, decides the file order.
            for (TensorInfo info : file.tensors().reversed()) {
                tensors.add(file.tensor(info.name()));
            }
            SafetensorsWriter.write(copy, tensors);
        }
        assertThat(Files.mismatch(reference, copy)).isEqualTo(-1L);
    }

    @Test
    void roundTripKeepsEveryDtypeAndShape(@TempDir Path dir) {
        float[] values = {1.0f, -2.5f, 3.14159f, 65504f, 1e-8f, Float.NaN};
        List<Tensor> tensors = List.of(
                Tensor.fromFloats("a.bf16", DType.BF16, new long[] {2, 3}, values),
                Tensor.fromFloats("b.f16", DType.F16, new long[] {6}, values),
                Tensor.fromFloats("c.f32", DType.F32, new long[] {3, 2}, values),
                Tensor.fromFloats("d.empty", DType.F32, new long[] {0, 4}, new float[0]),
                Tensor.fromLongs("e.ids", new long[] {3}, new long[] {1, -7, Long.MAX_VALUE}));
        Path file = dir.resolve("x.safetensors");
        SafetensorsWriter.write(file, tensors, Map.of("format", "pt", "note", "round trip"));
        try (SafetensorsFile read = SafetensorsFile.open(file)) {
            assertThat(read.metadata()).containsEntry("note", "round trip");
            assertThat(read.tensor("c.f32").toFloats()).containsExactly(values);
            float[] bf16 = read.tensor("a.bf16").toFloats();
            for (int i = 0; i < values.length; i++) {
                assertThat(Float.floatToRawIntBits(bf16[i])).isEqualTo(
                        Float.floatToRawIntBits(Dtypes.bf16ToFloat(Dtypes.floatToBf16(values[i]))));
            }
            assertThat(read.tensor("b.f16").toFloats()[3]).isEqualTo(65504f);
            assertThat(read.tensor("d.empty").toFloats()).isEmpty();
            assertThat(read.tensor("e.ids").toLongs()).containsExactly(1, -7, Long.MAX_VALUE);
            assertThat(read.header().dataStart() % 8).isZero();
        }
    }

    @Test
    void shardPlanWritesTheIndexAsTransformersDoes(@TempDir Path dir) throws IOException {
        Path referenceDir = Fixtures.path("tiny-llama-dpo-sharded");
        List<List<TensorSpec>> groups = new ArrayList<>();
        try (Checkpoint sharded = Checkpoint.open(referenceDir)) {
            for (SafetensorsFile shard : sharded.shards()) {
                groups.add(shard.tensors().stream().map(t -> new TensorSpec(t.name(), t.dtype(), t.shape())).toList());
            }
        }
        ShardPlan plan = ShardPlan.ofGroups(groups);
        assertThat(plan.shards()).extracting(ShardPlan.Shard::fileName)
                .containsExactly("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors");
        plan.writeIndex(dir);
        assertThat(Files.readString(dir.resolve(ShardPlan.INDEX_FILE)))
                .isEqualTo(Files.readString(referenceDir.resolve(ShardPlan.INDEX_FILE)));
    }

    @Test
    void greedyShardingStartsANewShardBeforeTheLimitIsPassed() {
        List<TensorSpec> specs = new ArrayList<>();
        for (int i = 0; i < 5; i++) {
            specs.add(new TensorSpec("t" + i, DType.F32, new long[] {100})); // 400 bytes each
        }
        ShardPlan plan = ShardPlan.greedy(specs, 1000);
        assertThat(plan.shards()).hasSize(3);
        assertThat(plan.shards().get(0).layout().tensors()).hasSize(2);
        assertThat(plan.tensorCount()).isEqualTo(5);
        assertThat(ShardPlan.greedy(specs, 1 << 20).sharded()).isFalse();
        // A tensor above the limit still gets written, alone in its shard.
        assertThat(ShardPlan.greedy(specs, 10).shards()).hasSize(5);
    }
}

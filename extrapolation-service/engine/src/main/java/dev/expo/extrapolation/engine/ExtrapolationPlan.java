package dev.expo.extrapolation.engine;

import dev.expo.checkpoint.Checkpoint;
import dev.expo.checkpoint.DType;
import dev.expo.checkpoint.ShardPlan;

import java.util.List;

/**
 * A checked, fully resolved extrapolation: every tensor's alpha and where it goes in the output files. It holds the
 * two input checkpoints open (memory-mapped) until closed.
 */
public final class ExtrapolationPlan implements AutoCloseable {

    private final ExtrapolationSpec spec;
    private final Checkpoint base;
    private final Checkpoint aligned;
    private final int numLayers;
    private final List<PlannedTensor> tensors;
    private final ShardPlan output;

    ExtrapolationPlan(ExtrapolationSpec spec, Checkpoint base, Checkpoint aligned, int numLayers,
                      List<PlannedTensor> tensors, ShardPlan output) {
        this.spec = spec;
        this.base = base;
        this.aligned = aligned;
        this.numLayers = numLayers;
        this.tensors = List.copyOf(tensors);
        this.output = output;
    }

    public ExtrapolationSpec spec() {
        return spec;
    }

    public Checkpoint base() {
        return base;
    }

    public Checkpoint aligned() {
        return aligned;
    }

    public int numLayers() {
        return numLayers;
    }

    /** In the aligned model's order (shard by shard, data order). */
    public List<PlannedTensor> tensors() {
        return tensors;
    }

    public ShardPlan output() {
        return output;
    }

    /** The output dtype when uniform, else null (tensors keep their own). */
    public DType outputDtype() {
        DType first = tensors.isEmpty() ? null : tensors.getFirst().outputDtype();
        return tensors.stream().allMatch(t -> t.outputDtype() == first) ? first : null;
    }

    public long inputBytes() {
        return tensors.stream().mapToLong(PlannedTensor::inputBytes).sum();
    }

    public long outputBytes() {
        return output.totalFileBytes();
    }

    @Override
    public void close() {
        try {
            base.close();
        } finally {
            aligned.close();
        }
    }
}

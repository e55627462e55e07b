package dev.expo.modeling;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

/** The DJL operations the runtime relies on, and their in-place semantics on the PyTorch engine. */
class DjlSmokeTest {
    @Test
    void pytorchEngineLoadsOfflineAndTheOpsBehaveAsRelied() {
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray a = manager.create(new float[] {1, 2, 3, 4}, new Shape(2, 2));
            assertThat(a.matMul(a).toFloatArray()).containsExactly(7, 10, 15, 22);
            // set with tensor indices on two dims (rows, positions): in place, as the KV cache writes
            NDArray cache = manager.zeros(new Shape(2, 1, 3, 2));   // [rows, heads, positions, dim]
            NDArray rows = manager.create(new long[] {0, 1});
            NDArray positions = manager.create(new long[] {2, 0});
            cache.set(new NDIndex("{}, :, {}", rows, positions),
                    manager.create(new float[] {1, 2, 3, 4}, new Shape(2, 1, 2)));
            assertThat(cache.toFloatArray()).containsExactly(0, 0, 0, 0, 1, 2, 3, 4, 0, 0, 0, 0);
            // several positions per row: indices [rows, 1] and [rows, T] broadcast to [rows, T]
            NDArray cache2 = manager.zeros(new Shape(2, 1, 3, 1));
            cache2.set(new NDIndex("{}, :, {}", manager.create(new long[] {0, 1}, new Shape(2, 1)),
                    manager.create(new long[] {0, 1, 1, 2}, new Shape(2, 2))),
                    manager.create(new float[] {1, 2, 3, 4}, new Shape(2, 2, 1, 1)));
            assertThat(cache2.toFloatArray()).containsExactly(1, 2, 0, 0, 3, 4);
            // a slice is a view: writes through set are seen by the parent
            NDArray big = manager.zeros(new Shape(2, 4));
            big.set(new NDIndex("1, 1:3"), manager.create(new float[] {5, 6}));
            assertThat(big.toFloatArray()).containsExactly(0, 0, 0, 0, 0, 5, 6, 0);
            NDArray view = big.get(new NDIndex(":, 0:3"));
            assertThat(view.getShape()).isEqualTo(new Shape(2, 3));
            NDArray w = manager.create(new float[] {1, 0, 0, 1, 1, 1}, new Shape(3, 2));
            assertThat(ai.djl.nn.core.Linear.linear(a, w).singletonOrThrow().toFloatArray()).containsExactly(1, 2, 3, 3, 4, 7);
            assertThat(ai.djl.nn.Activation.sigmoid(manager.create(new float[] {0})).toFloatArray())
                    .containsExactly(0.5f);
            NDArray ids = manager.create(new long[] {1, 0, 1});
            assertThat(w.get(ids).getShape()).isEqualTo(new Shape(3, 2));
            assertThat(a.toType(DataType.FLOAT32, false).getDataType()).isEqualTo(DataType.FLOAT32);
        }
    }
}

package dev.expo.cli;

import dev.expo.checkpoint.Checkpoint;
import dev.expo.checkpoint.DType;
import dev.expo.checkpoint.TensorInfo;

import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;

final class ModelsCheck {

    private ModelsCheck() {
    }

    /** The demo pair: same tensors, BF16, differing by a small delta on every tensor, with tokenizer files. */
    static void assertDemoPair(Path store) {
        try (Checkpoint sft = Checkpoint.open(store.resolve("demo-sft"));
             Checkpoint dpo = Checkpoint.open(store.resolve("demo-dpo"))) {
            assertThat(sft.byName().keySet()).isEqualTo(dpo.byName().keySet());
            for (TensorInfo tensor : sft.tensors()) {
                assertThat(tensor.dtype()).isEqualTo(DType.BF16);
                assertThat(sft.tensor(tensor.name()).bytes().mismatch(dpo.tensor(tensor.name()).bytes()))
                        .as(tensor.name()).isNotEqualTo(-1L);
            }
        }
        assertThat(store.resolve("demo-sft/tokenizer.json")).exists();
        assertThat(store.resolve("demo-dpo/tokenizer_config.json")).content().contains("chat_template");
    }
}

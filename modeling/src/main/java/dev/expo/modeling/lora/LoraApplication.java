package dev.expo.modeling.lora;

/**
 * One adapter applied to a batch, unmerged: {@code rowScales[b]} multiplies its delta for row b (0 = not for that
 * row, 1 = as trained, 1 + alpha = extrapolated). {@code training} applies the adapter's lora_dropout to each
 * module's input, as PEFT in train mode (torch's dropout and generator); inference never does.
 */
public record LoraApplication(LoraAdapter adapter, float[] rowScales, boolean training) {

    public LoraApplication(LoraAdapter adapter, float[] rowScales) {
        this(adapter, rowScales, false);
    }
}

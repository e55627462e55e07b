package dev.expo.modeling.lora;

/**
 * One adapter applied to a batch, unmerged: {@code rowScales[b]} multiplies its delta for row b (0 = not for that
 * row, 1 = as trained, 1 + alpha = extrapolated).
 */
public record LoraApplication(LoraAdapter adapter, float[] rowScales) {
}

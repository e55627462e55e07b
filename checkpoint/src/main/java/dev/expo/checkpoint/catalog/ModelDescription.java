package dev.expo.checkpoint.catalog;

import dev.expo.checkpoint.DType;

/**
 * What the store knows of one model without loading it: its kind, architecture, storage dtype, size on disk and
 * parameter count. {@code baseModel} is the model an adapter was trained on (from its config), else null.
 */
public record ModelDescription(String name, ModelKind kind, String architecture, DType dtype, long sizeBytes,
                               long parameterCount, String baseModel) {
}

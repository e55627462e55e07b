package dev.expo.inference.engine;

import dev.expo.modeling.lora.LoraAdapter;

import java.util.Arrays;
import java.util.Map;
import java.util.Objects;

/**
 * What besides the tokens decides a cache's keys and values: the adapters and their scales, and the image (with the
 * multimodal model that turned it into rows). Two sequences may share cached positions only under equal keys.
 * Adapters and multimodal models compare by identity: one reloaded from disk may have changed.
 *
 * @param imageModel  the multimodal model whose vision tower and projector made the image rows; null without image
 * @param imageDigest SHA-256 of the image's bytes; null without image
 */
record PrefixKey(Object imageModel, byte[] imageDigest, Map<LoraAdapter, Float> adapters) {

    @Override
    public boolean equals(Object other) {
        return other instanceof PrefixKey key && imageModel == key.imageModel
                && Arrays.equals(imageDigest, key.imageDigest) && adapters.equals(key.adapters);
    }

    @Override
    public int hashCode() {
        return Objects.hash(System.identityHashCode(imageModel), Arrays.hashCode(imageDigest), adapters);
    }
}

package dev.expo.gateway.routing;

import com.google.protobuf.CodedInputStream;
import dev.expo.api.v1.InferenceServiceGrpc;

import java.io.IOException;
import java.util.Set;

/**
 * The model a forwarded request names, read from its bytes without parsing the rest: the replica policy's input
 * ({@link ModelAffinity}). The inference calls that run on a model all have it as field 1 ({@code string model = 1}).
 */
final class RequestModel {

    private static final Set<String> BY_MODEL = Set.of(
            InferenceServiceGrpc.getGenerateMethod().getFullMethodName(),
            InferenceServiceGrpc.getScoreMethod().getFullMethodName(),
            InferenceServiceGrpc.getRewardMethod().getFullMethodName(),
            InferenceServiceGrpc.getEmbedImageMethod().getFullMethodName(),
            InferenceServiceGrpc.getLoadModelMethod().getFullMethodName());

    /** Field 1, length-delimited: (1 << 3) | 2. */
    private static final int MODEL_TAG = 10;

    private RequestModel() {
    }

    static boolean namesModel(String fullMethodName) {
        return BY_MODEL.contains(fullMethodName);
    }

    /** Field 1 of the message if it is a string; null if absent or the bytes are not a message (the backend says). */
    static String of(byte[] request) {
        try {
            CodedInputStream in = CodedInputStream.newInstance(request);
            for (int tag = in.readTag(); tag != 0; tag = in.readTag()) {
                if (tag == MODEL_TAG) {
                    return in.readStringRequireUtf8();
                }
                if (!in.skipField(tag)) {
                    return null;
                }
            }
            return null;
        } catch (IOException malformed) {
            return null;
        }
    }
}

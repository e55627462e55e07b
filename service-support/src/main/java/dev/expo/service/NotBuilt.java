package dev.expo.service;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;

/** The answer of an RPC that is part of the contract but not built yet: UNIMPLEMENTED, saying so. */
public final class NotBuilt {

    private NotBuilt() {
    }

    public static StatusRuntimeException rpc(String method) {
        return Status.UNIMPLEMENTED.withDescription(method + " is not built yet in this version of expo")
                .asRuntimeException();
    }
}

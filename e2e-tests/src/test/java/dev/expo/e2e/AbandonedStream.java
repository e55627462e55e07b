package dev.expo.e2e;

import dev.expo.benchmarks.Bearer;

import dev.expo.api.v1.GenerateRequest;
import dev.expo.api.v1.GenerateResponse;
import dev.expo.api.v1.InferenceServiceGrpc;
import dev.expo.api.v1.SamplingParams;
import dev.expo.api.v1.TokenIds;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;

import java.util.Iterator;
import java.util.List;

/**
 * A client process that starts a long generation, says so at its first token, then waits to be killed (a client whose
 * connection simply drops: no cancellation is ever sent, as when an app crashes or its network goes) or frozen (then
 * not even its own deadline timer resets the stream).
 */
public final class AbandonedStream {

    private AbandonedStream() {
    }

    /** Arguments: the address (host:port), the model, and optionally a deadline in ms and the tokens to ask for. */
    public static void main(String[] args) throws InterruptedException {
        ManagedChannel channel = ManagedChannelBuilder.forTarget(args[0]).usePlaintext()
                .intercept(Bearer.of(System.getenv("EXPO_API_KEY"))).build();
        GenerateRequest request = GenerateRequest.newBuilder().setModel(args[1])
                .setTokenIds(TokenIds.newBuilder().addAllIds(List.of(1, 5, 9)))
                .setSampling(SamplingParams.newBuilder().setTemperature(0f)
                        .setMaxNewTokens(args.length > 3 ? Integer.parseInt(args[3]) : 250).setIgnoreEos(true))
                .build();
        InferenceServiceGrpc.InferenceServiceBlockingStub stub = InferenceServiceGrpc.newBlockingStub(channel);
        if (args.length > 2) {
            stub = stub.withDeadlineAfter(Long.parseLong(args[2]), java.util.concurrent.TimeUnit.MILLISECONDS);
        }
        Iterator<GenerateResponse> responses = stub.generate(request);
        responses.next();
        System.out.println("first token");
        System.out.flush();
        Thread.sleep(Long.MAX_VALUE);
    }
}

package dev.expo.gateway.evaluation;

import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;

import java.util.concurrent.CompletableFuture;
import java.util.function.Consumer;
import java.util.function.Supplier;

/**
 * A server-streaming call folded into a future: every message goes to {@code onMessage}, the future completes with
 * {@code result} when the stream ends, fails with the call's status, and cancelling the future cancels the call.
 */
final class StreamCall<Q, R, T> extends CompletableFuture<T> implements ClientResponseObserver<Q, R> {

    private final Consumer<R> onMessage;
    private final Supplier<T> result;
    private volatile ClientCallStreamObserver<Q> call;

    StreamCall(Consumer<R> onMessage, Supplier<T> result) {
        this.onMessage = onMessage;
        this.result = result;
    }

    @Override
    public void beforeStart(ClientCallStreamObserver<Q> requestStream) {
        call = requestStream;
    }

    @Override
    public void onNext(R message) {
        onMessage.accept(message);
    }

    @Override
    public void onError(Throwable failure) {
        completeExceptionally(failure);
    }

    @Override
    public void onCompleted() {
        complete(result.get());
    }

    @Override
    public boolean cancel(boolean mayInterruptIfRunning) {
        ClientCallStreamObserver<Q> current = call;
        if (current != null) {
            current.cancel("the evaluation run stopped", null);
        }
        return super.cancel(mayInterruptIfRunning);
    }
}

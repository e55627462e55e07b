package dev.expo.service;

import io.smallrye.mutiny.Multi;
import io.smallrye.mutiny.infrastructure.Infrastructure;
import io.smallrye.mutiny.subscription.MultiEmitter;

import java.util.concurrent.Executor;
import java.util.function.Consumer;

/**
 * One server-streaming gRPC call, as every service answers one: its work starts on a worker thread, every message
 * and the end go out on the call's event loop only while the client's stream is open, a failure leaves as the
 * status {@link GrpcErrors} maps it to, and the work is stopped once when the client goes (it cancelled, its
 * deadline passed, or its connection closed), whether that happens before or after the work has started.
 *
 * <pre>{@code
 * public Multi<Event> follow(Request request) {
 *     return ServerStream.open(stream -> {
 *         Job job = engine.start(toEngine(request), event -> stream.emit(toProto(event)), ...);
 *         stream.onStop(job::cancel);
 *     });
 * }
 * }</pre>
 */
public final class ServerStream<T> {

    private final MultiEmitter<? super T> emitter;
    private final Executor writes;
    private final StopOnce stop;

    private ServerStream(MultiEmitter<? super T> emitter, Executor writes, StopOnce stop) {
        this.emitter = emitter;
        this.writes = writes;
        this.stop = stop;
    }

    /**
     * The call's response stream; {@code start} runs on a worker once the client subscribes, and a runtime exception
     * it throws fails the call. Call this from the gRPC method itself, on the call's event loop: the watch on the
     * client's stream and the event-loop writes are taken from the request context current there.
     */
    public static <T> Multi<T> open(Consumer<ServerStream<T>> start) {
        StopOnce stop = new StopOnce();
        ClientDisconnects.onClose(stop::fire);
        Executor writes = ClientDisconnects.writesWhileOpen();
        return Multi.createFrom().<T>emitter(emitter -> {
            emitter.onTermination(stop::fire);
            ServerStream<T> stream = new ServerStream<>(emitter, writes, stop);
            try {
                start.accept(stream);
            } catch (RuntimeException e) {
                stream.fail(e);
            }
        }).runSubscriptionOn(Infrastructure.getDefaultWorkerPool());
    }

    public void emit(T message) {
        writes.execute(() -> emitter.emit(message));
    }

    /** Sends the last message and ends the call in one write, so nothing can come between them. */
    public void complete(T last) {
        writes.execute(() -> {
            emitter.emit(last);
            emitter.complete();
        });
    }

    /** Ends the call with the status {@link GrpcErrors#toStatus} gives {@code failure}. */
    public void fail(Throwable failure) {
        var status = GrpcErrors.toStatusException(failure);
        writes.execute(() -> emitter.fail(status));
    }

    /**
     * The work has started and {@code stopWork} stops it: run once when the client goes (at once if it has gone
     * already), and also when the call ends, so stopping finished work must be a no-op.
     */
    public void onStop(Runnable stopWork) {
        stop.attach(stopWork);
    }
}

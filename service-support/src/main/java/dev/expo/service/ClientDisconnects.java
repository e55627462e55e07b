package dev.expo.service;

import io.smallrye.common.vertx.ContextLocals;
import io.vertx.ext.web.Router;
import jakarta.enterprise.event.Observes;
import jakarta.inject.Singleton;

import java.util.ArrayList;
import java.util.List;
import java.util.OptionalLong;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;

/**
 * Tells a gRPC call when its client is gone: its HTTP/2 stream has closed, whatever closed it, or its deadline has
 * passed. Vert.x's gRPC server reports a client's RST_STREAM as a cancellation, but not a connection that simply goes
 * away (a killed process, a dropped network), and it does not enforce the deadline a client sends (grpc-timeout), as
 * grpc-java's own server does: it waits for the client to reset the stream, which a frozen or cut-off client never
 * does. Either way a generation or a forwarded backend call would run on for nobody.
 *
 * <p>Each gRPC request gets a watch on its response's close (for HTTP/2, called when the stream closes: ended, reset,
 * or its connection gone) and, when it has a deadline, a timer for it; both are kept in the request's Vert.x context,
 * and a call registers what to do from its own handler. After a call has ended normally its actions are no-ops
 * (cancelling a finished generation or backend call).
 */
@Singleton
public class ClientDisconnects {

    private static final String KEY = "expo.client-stream-closed";
    /** Deadlines further off than this (grpc-timeout allows years) are left to the client. */
    private static final long MAX_TIMER_NANOS = TimeUnit.DAYS.toNanos(30);

    void watchGrpcRequests(@Observes Router router) {
        router.route().order(Integer.MIN_VALUE).handler(context -> {
            String contentType = context.request().getHeader("content-type");
            if (contentType != null && contentType.startsWith("application/grpc")) {
                StreamClosed closed = new StreamClosed();
                // The client has stopped waiting at its deadline, as surely as if it had reset the stream: its work
                // stops, and the call then ends as a cancelled one does. (Not by resetting the stream here: Vert.x
                // then fails the call's last writes with a NullPointerException, on whatever thread makes them.)
                OptionalLong timeout = GrpcTimeout.nanos(context.request().getHeader("grpc-timeout"));
                long timer = timeout.isPresent() && timeout.getAsLong() < MAX_TIMER_NANOS
                        ? context.vertx().setTimer(Math.max(1, TimeUnit.NANOSECONDS.toMillis(timeout.getAsLong())),
                        id -> closed.fire())
                        : -1;
                context.response().closeHandler(ignored -> {
                    closed.streamClosed = true;
                    closed.fire();
                    if (timer >= 0) {
                        context.vertx().cancelTimer(timer);
                    }
                });
                try {
                    ContextLocals.put(KEY, closed);
                } catch (UnsupportedOperationException notARequestContext) {
                    // Quarkus runs requests on duplicated contexts; without one there is nowhere to keep the watch.
                }
            }
            context.next();
        });
    }

    /**
     * Runs {@code action} once when the current gRPC call's client stream closes or its deadline passes (at once if
     * either already has). Call it
     * from the call's handler on its event-loop thread, where the request's context is current; elsewhere it does
     * nothing.
     */
    public static void onClose(Runnable action) {
        if (io.vertx.core.Vertx.currentContext() == null) {
            return;
        }
        try {
            ContextLocals.<StreamClosed>get(KEY).ifPresent(closed -> closed.add(action));
        } catch (UnsupportedOperationException notARequestContext) {
            // not inside a request: nothing to watch
        }
    }

    /**
     * Where the current gRPC call's writes should run: on its event loop, and only while its HTTP/2 stream is open.
     * Call it from the call's handler on its event-loop thread; elsewhere (or outside a request) writes run where they
     * are made.
     *
     * <p>Why: a response's first message and its trailers are HEADERS frames. When the client resets the stream (it
     * cancelled, or its deadline passed) just before such a write, Netty no longer knows the stream and takes the
     * write for a server-initiated one with a client's stream id: a connection error. The server then sends GOAWAY
     * and every other stream on the connection dies with INTERNAL (netty/netty#6906). The client's reset is handled on
     * the same event loop and closes the stream before any later task there, so a write that checks on that loop
     * never meets a stream that Netty has already dropped.
     */
    public static Executor writesWhileOpen() {
        io.vertx.core.Context context = io.vertx.core.Vertx.currentContext();
        if (context == null) {
            return Runnable::run;
        }
        try {
            StreamClosed closed = ContextLocals.<StreamClosed>get(KEY).orElse(null);
            if (closed == null) {
                return Runnable::run;
            }
            return write -> context.runOnContext(ignored -> {
                if (!closed.streamClosed) {
                    write.run();
                }
            });
        } catch (UnsupportedOperationException notARequestContext) {
            return Runnable::run;
        }
    }

    /** Actions for one stream, run once when it closes. */
    static final class StreamClosed {
        private final List<Runnable> actions = new ArrayList<>();
        private boolean fired;
        /** Set on the event loop when the HTTP/2 stream has closed (not when only the deadline has passed). */
        volatile boolean streamClosed;

        void add(Runnable action) {
            synchronized (this) {
                if (!fired) {
                    actions.add(action);
                    return;
                }
            }
            action.run();
        }

        void fire() {
            List<Runnable> toRun;
            synchronized (this) {
                if (fired) {
                    return;
                }
                fired = true;
                toRun = List.copyOf(actions);
                actions.clear();
            }
            toRun.forEach(Runnable::run);
        }
    }
}

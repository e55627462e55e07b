package dev.expo.service;

import io.smallrye.common.vertx.ContextLocals;
import io.vertx.ext.web.Router;
import jakarta.enterprise.event.Observes;
import jakarta.inject.Singleton;

import java.util.ArrayList;
import java.util.List;

/**
 * Tells a gRPC call when its client's HTTP/2 stream has closed, whatever closed it. Vert.x's gRPC server reports a
 * client's RST_STREAM as a cancellation, but not a connection that simply goes away (a killed process, a dropped
 * network): the call is never cancelled, and a generation or a forwarded backend call would run on for nobody.
 *
 * <p>Each gRPC request gets a watch on its response's close (for HTTP/2, called when the stream closes: ended, reset,
 * or its connection gone), kept in the request's Vert.x context; a call registers what to do from its own handler.
 * After a call has ended normally its actions are no-ops (cancelling a finished generation or backend call).
 */
@Singleton
public class ClientDisconnects {

    private static final String KEY = "expo.client-stream-closed";

    void watchGrpcRequests(@Observes Router router) {
        router.route().order(Integer.MIN_VALUE).handler(context -> {
            String contentType = context.request().getHeader("content-type");
            if (contentType != null && contentType.startsWith("application/grpc")) {
                StreamClosed closed = new StreamClosed();
                context.response().closeHandler(ignored -> closed.fire());
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
     * Runs {@code action} once when the current gRPC call's client stream closes (at once if it already has). Call it
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

    /** Actions for one stream, run once when it closes. */
    static final class StreamClosed {
        private final List<Runnable> actions = new ArrayList<>();
        private boolean fired;

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

package dev.expo.service;

/**
 * Stops a call's work once its client is gone (it cancelled, its deadline passed, or its connection closed), whichever
 * comes first: the client leaving or the work starting. A client can leave before the work exists (a streamed first
 * token can reach it before its handler has the handle), and then the work is stopped as soon as it is attached.
 */
public final class StopOnce {

    private Runnable stop;
    private boolean fired;

    /** The client is gone: stop the work if it has started (stopping finished work must be a no-op). */
    public synchronized void fire() {
        fired = true;
        if (stop != null) {
            stop.run();
        }
    }

    /** The work has started and {@code stop} stops it; run at once if the client has already gone. */
    public synchronized void attach(Runnable stop) {
        this.stop = stop;
        if (fired) {
            stop.run();
        }
    }
}

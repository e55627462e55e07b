package dev.expo.service;

import com.google.protobuf.Timestamp;

import java.time.Instant;

/** Instants on the wire. */
public final class Timestamps {

    private Timestamps() {
    }

    public static Timestamp of(Instant instant) {
        return Timestamp.newBuilder().setSeconds(instant.getEpochSecond()).setNanos(instant.getNano()).build();
    }
}

package dev.expo.extrapolation.engine.kernel;

/** NaN and infinity counts of the values a kernel wrote (after rounding to the output dtype). */
public final class NonFiniteCount {

    private long nan;
    private long inf;

    public void addNan(long count) {
        nan += count;
    }

    public void addInf(long count) {
        inf += count;
    }

    public void add(NonFiniteCount other) {
        nan += other.nan;
        inf += other.inf;
    }

    public long nan() {
        return nan;
    }

    public long inf() {
        return inf;
    }

    public boolean any() {
        return nan != 0 || inf != 0;
    }
}

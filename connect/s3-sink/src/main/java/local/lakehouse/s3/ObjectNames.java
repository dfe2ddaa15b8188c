package local.lakehouse.s3;

import java.util.OptionalLong;

/**
 * Object naming (pure, no I/O).
 *
 * <p>{@code <prefix><topic>/partition=<p>/<topic>+<p>+<first offset>-<last offset>.jsonl[.gz]},
 * offsets zero-padded to 20 digits so that names sort by offset. The name is fixed by the
 * offset range: a retried flush of the same records overwrites its object instead of adding a
 * second copy.
 */
public final class ObjectNames {
    static final String EXTENSION = ".jsonl";
    private static final int OFFSET_DIGITS = 20;

    private ObjectNames() {
    }

    /** {@code <prefix><topic>/partition=<p>/}: where one partition's objects are listed. */
    public static String directory(String prefix, String topic, int partition) {
        return prefix + topic + "/partition=" + partition + "/";
    }

    /** The key of the object holding offsets {@code first..last} (inclusive) of one partition. */
    public static String key(String prefix, String topic, int partition, long first, long last,
                             Compression compression) {
        if (first < 0 || last < first) {
            throw new IllegalArgumentException("bad offset range " + first + ".." + last);
        }
        return directory(prefix, topic, partition) + topic + "+" + partition + "+" + pad(first) + "-"
                + pad(last) + EXTENSION + compression.suffix();
    }

    static String pad(long offset) {
        String s = Long.toString(offset);
        StringBuilder b = new StringBuilder(OFFSET_DIGITS);
        for (int i = s.length(); i < OFFSET_DIGITS; i++) {
            b.append('0');
        }
        return b.append(s).toString();
    }

    /**
     * The last offset stored in {@code key} when it is an object of this topic partition under
     * {@code prefix}, written with any supported compression; empty for any other key.
     */
    public static OptionalLong lastOffset(String key, String prefix, String topic, int partition) {
        String start = directory(prefix, topic, partition) + topic + "+" + partition + "+";
        if (!key.startsWith(start)) {
            return OptionalLong.empty();
        }
        String rest = key.substring(start.length());
        // <20 digits>-<20 digits>.jsonl<suffix>
        int digitsEnd = 2 * OFFSET_DIGITS + 1;
        if (rest.length() < digitsEnd + EXTENSION.length() || rest.charAt(OFFSET_DIGITS) != '-') {
            return OptionalLong.empty();
        }
        String tail = rest.substring(digitsEnd);
        boolean known = false;
        for (Compression c : Compression.values()) {
            if (tail.equals(EXTENSION + c.suffix())) {
                known = true;
                break;
            }
        }
        if (!known) {
            return OptionalLong.empty();
        }
        String first = rest.substring(0, OFFSET_DIGITS);
        String last = rest.substring(OFFSET_DIGITS + 1, digitsEnd);
        if (!allDigits(first) || !allDigits(last)) {
            return OptionalLong.empty();
        }
        try {
            long f = Long.parseLong(first);
            long l = Long.parseLong(last);
            return l >= f ? OptionalLong.of(l) : OptionalLong.empty();
        } catch (NumberFormatException e) { // more than Long.MAX_VALUE
            return OptionalLong.empty();
        }
    }

    private static boolean allDigits(String s) {
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c < '0' || c > '9') {
                return false;
            }
        }
        return true;
    }
}

package local.lakehouse.s3;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.Locale;
import java.util.zip.GZIPOutputStream;

/**
 * Compression of a whole object ({@code file.compression.type}). zstd is deliberately not offered:
 * the JDK has no zstd codec and the usual Java binding needs native libraries.
 */
public enum Compression {
    NONE("none", ""),
    GZIP("gzip", ".gz");

    private final String configName;
    private final String suffix;

    Compression(String configName, String suffix) {
        this.configName = configName;
        this.suffix = suffix;
    }

    /** The value of {@code file.compression.type}. */
    public String configName() {
        return configName;
    }

    /** Appended to {@code .jsonl} in object names. */
    public String suffix() {
        return suffix;
    }

    /** The object body for {@code len} bytes of concatenated lines. */
    public byte[] compress(byte[] data, int len) {
        if (this == NONE) {
            if (len == data.length) {
                return data;
            }
            byte[] copy = new byte[len];
            System.arraycopy(data, 0, copy, 0, len);
            return copy;
        }
        ByteArrayOutputStream out = new ByteArrayOutputStream(Math.max(64, len / 4));
        try (GZIPOutputStream gz = new GZIPOutputStream(out, 64 * 1024)) {
            gz.write(data, 0, len);
        } catch (IOException e) {
            throw new UncheckedIOException(e); // cannot happen on a byte array
        }
        return out.toByteArray();
    }

    public static Compression fromConfig(String value) {
        String v = value.trim().toLowerCase(Locale.ROOT);
        for (Compression c : values()) {
            if (c.configName.equals(v)) {
                return c;
            }
        }
        throw new IllegalArgumentException("unknown compression " + value);
    }

    public static String[] configNames() {
        Compression[] all = values();
        String[] names = new String[all.length];
        for (int i = 0; i < all.length; i++) {
            names[i] = all[i].configName;
        }
        return names;
    }
}

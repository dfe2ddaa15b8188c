package local.lakehouse.s3;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.io.JsonStringEncoder;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import org.apache.kafka.connect.errors.DataException;
import org.apache.kafka.connect.header.Header;
import org.apache.kafka.connect.header.Headers;
import org.apache.kafka.connect.sink.SinkRecord;

/**
 * Encodes one record as one bronze line (pure, no I/O):
 *
 * <pre>{"topic":…,"partition":…,"offset":…,"timestamp":…,"key":…,"value":…,"headers":{…}}\n</pre>
 *
 * <p>Key and value bytes are spliced in verbatim when they are exactly one UTF-8 JSON value
 * (never decoded and re-encoded), with CR/LF bytes — which in valid JSON can only be whitespace —
 * turned into spaces. A key or value that is not JSON is written as {@code null} followed by
 * {@code "key_raw_b64"} / {@code "value_raw_b64"}: its bytes in base64, exactly as silver's Kafka
 * source ({@code app/lakehouse/silver/kafka_lines.py}) turns the same record into a line, so
 * bronze keeps it and silver quarantines it on either path. Header values are base64. Topic,
 * partition and offset are the record's original ones (before any SMT). Only what cannot be a
 * line at all — a key or value that is not bytes (wrong converter), a name that is not valid
 * Unicode — is refused with a {@link DataException}.
 */
public final class LineEncoder {
    private static final JsonFactory JSON = new JsonFactory();
    private static final byte[] NULL = "null".getBytes(StandardCharsets.US_ASCII);
    private static final int MAX_REASON = 300;

    private final Base64.Encoder base64 = Base64.getEncoder();
    private final JsonStringEncoder strings = JsonStringEncoder.getInstance();

    private String notJson;

    /** The line for {@code record}, ending in {@code \n}. */
    public byte[] encode(SinkRecord record) {
        notJson = null;
        String topic = record.originalTopic();
        int partition = record.originalKafkaPartition();
        long offset = record.originalKafkaOffset();
        byte[] key = record.key() == null ? null : bytes(record.key(), "key", record);
        byte[] value = record.value() == null ? null : bytes(record.value(), "value", record);

        ByteArrayOutputStream out = new ByteArrayOutputStream(
                (key == null ? 0 : key.length) + (value == null ? 0 : value.length) + 160);
        ascii(out, "{\"topic\":");
        quoted(out, topic, record, "topic");
        ascii(out, ",\"partition\":" + partition + ",\"offset\":" + offset + ",\"timestamp\":"
                + (record.timestamp() == null ? "null" : Long.toString(record.timestamp())) + ",");
        field(out, "key", key);
        out.write(',');
        field(out, "value", value);
        Headers headers = record.headers();
        if (headers != null && !headers.isEmpty()) {
            ascii(out, ",\"headers\":{");
            boolean first = true;
            for (Header h : headers) {
                if (!first) {
                    out.write(',');
                }
                first = false;
                quoted(out, h.key(), record, "header name");
                out.write(':');
                Object hv = h.value();
                if (hv == null) {
                    out.write(NULL, 0, NULL.length);
                } else {
                    out.write('"');
                    byte[] b64 = base64.encode(bytes(hv, "header " + h.key(), record));
                    out.write(b64, 0, b64.length);
                    out.write('"');
                }
            }
            out.write('}');
        }
        ascii(out, "}\n");
        return out.toByteArray();
    }

    /**
     * What the last {@link #encode} wrote as base64 because it is not JSON, with the reason
     * ({@code "value is not JSON: invalid UTF-8 at byte 0"}, key and value joined by "; "), or
     * null when key and value were JSON or null.
     */
    public String notJson() {
        return notJson;
    }

    /**
     * {@code "<name>":<the JSON spliced in>}, {@code "<name>":null} for no bytes, or
     * {@code "<name>":null,"<name>_raw_b64":"<base64>"} for bytes that are not JSON.
     */
    private void field(ByteArrayOutputStream out, String name, byte[] raw) {
        ascii(out, "\"" + name + "\":");
        if (raw == null) {
            out.write(NULL, 0, NULL.length);
            return;
        }
        String problem = jsonProblem(raw);
        if (problem != null) {
            String note = name + " is not JSON: " + problem;
            notJson = notJson == null ? note : notJson + "; " + note;
            ascii(out, "null,\"" + name + "_raw_b64\":\"");
            byte[] b64 = base64.encode(raw);
            out.write(b64, 0, b64.length);
            out.write('"');
            return;
        }
        int from = 0;
        for (int i = 0; i < raw.length; i++) {
            if (raw[i] == '\n' || raw[i] == '\r') {
                out.write(raw, from, i - from);
                out.write(' ');
                from = i + 1;
            }
        }
        out.write(raw, from, raw.length - from);
    }

    /** The record's bytes (ByteArrayConverter gives byte[]; a String is taken as its UTF-8). */
    private static byte[] bytes(Object data, String what, SinkRecord record) {
        if (data instanceof byte[]) {
            return (byte[]) data;
        }
        if (data instanceof ByteBuffer) {
            ByteBuffer buf = ((ByteBuffer) data).duplicate();
            byte[] b = new byte[buf.remaining()];
            buf.get(b);
            return b;
        }
        if (data instanceof String) {
            return ((String) data).getBytes(StandardCharsets.UTF_8);
        }
        throw new DataException(what + " is not bytes but " + data.getClass().getName()
                + " (configure org.apache.kafka.connect.converters.ByteArrayConverter) " + where(record));
    }

    static String where(SinkRecord r) {
        return "(topic " + r.originalTopic() + " partition " + r.originalKafkaPartition() + " offset "
                + r.originalKafkaOffset() + ")";
    }

    /**
     * Why {@code b} is not exactly one UTF-8 JSON value (whitespace around it allowed), or null
     * when it is.
     */
    static String jsonProblem(byte[] b) {
        if (b.length >= 3 && (b[0] & 0xFF) == 0xEF && (b[1] & 0xFF) == 0xBB && (b[2] & 0xFF) == 0xBF) {
            return "starts with a byte order mark";
        }
        // No NUL byte (never in UTF-8 JSON) also keeps Jackson from guessing UTF-16/32.
        int bad = invalidUtf8At(b);
        if (bad >= 0) {
            return (b[bad] == 0 ? "NUL byte" : "invalid UTF-8") + " at byte " + bad;
        }
        try (JsonParser p = JSON.createParser(b)) {
            JsonToken t = p.nextToken();
            if (t == null) {
                return "no JSON value (empty or only whitespace)";
            }
            p.skipChildren();
            if (p.nextToken() != null) {
                return "more than one JSON value (second one at byte "
                        + p.currentTokenLocation().getByteOffset() + ")";
            }
            return null;
        } catch (JsonProcessingException e) {
            String msg = e.getOriginalMessage();
            if (msg != null) {
                msg = msg.replace('\n', ' ').replace('\r', ' ');
                if (msg.length() > MAX_REASON) {
                    msg = msg.substring(0, MAX_REASON) + "…";
                }
            }
            JsonLocation loc = e.getLocation();
            return msg + (loc == null ? "" : " at byte " + loc.getByteOffset());
        } catch (IOException e) {
            return String.valueOf(e.getMessage());
        } catch (RuntimeException e) { // Jackson's read constraints and the like
            return e.getClass().getSimpleName() + ": " + e.getMessage();
        }
    }

    /**
     * Index of the first byte that is not part of well-formed UTF-8 (no overlongs, no
     * surrogates, nothing past U+10FFFF) or is NUL; -1 when all is well.
     */
    static int invalidUtf8At(byte[] b) {
        int i = 0;
        int n = b.length;
        while (i < n) {
            int c = b[i] & 0xFF;
            if (c < 0x80) {
                if (c == 0) {
                    return i;
                }
                i++;
                continue;
            }
            int len;
            int lo = 0x80;
            int hi = 0xBF;
            if (c >= 0xC2 && c <= 0xDF) {
                len = 2;
            } else if (c >= 0xE0 && c <= 0xEF) {
                len = 3;
                if (c == 0xE0) {
                    lo = 0xA0;
                } else if (c == 0xED) {
                    hi = 0x9F;
                }
            } else if (c >= 0xF0 && c <= 0xF4) {
                len = 4;
                if (c == 0xF0) {
                    lo = 0x90;
                } else if (c == 0xF4) {
                    hi = 0x8F;
                }
            } else {
                return i;
            }
            if (i + len > n) {
                return i;
            }
            int c1 = b[i + 1] & 0xFF;
            if (c1 < lo || c1 > hi) {
                return i;
            }
            for (int k = 2; k < len; k++) {
                int ck = b[i + k] & 0xFF;
                if (ck < 0x80 || ck > 0xBF) {
                    return i;
                }
            }
            i += len;
        }
        return -1;
    }

    private void quoted(ByteArrayOutputStream out, String s, SinkRecord record, String what) {
        byte[] escaped;
        try {
            escaped = strings.quoteAsUTF8(s == null ? "" : s);
        } catch (IllegalArgumentException e) { // unpaired surrogate
            throw new DataException(what + " is not valid Unicode: " + e.getMessage() + " " + where(record));
        }
        out.write('"');
        out.write(escaped, 0, escaped.length);
        out.write('"');
    }

    private static void ascii(ByteArrayOutputStream out, String s) {
        byte[] b = s.getBytes(StandardCharsets.US_ASCII);
        out.write(b, 0, b.length);
    }
}

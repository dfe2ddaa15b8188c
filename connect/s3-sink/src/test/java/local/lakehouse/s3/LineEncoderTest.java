package local.lakehouse.s3;

import static local.lakehouse.s3.Records.record;
import static local.lakehouse.s3.Records.utf8;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.kafka.connect.data.Schema;
import org.apache.kafka.connect.errors.DataException;
import org.apache.kafka.connect.header.ConnectHeaders;
import org.apache.kafka.connect.sink.SinkRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class LineEncoderTest {
    private final LineEncoder encoder = new LineEncoder();

    private static String line(SinkRecord r) {
        return new String(new LineEncoder().encode(r), StandardCharsets.UTF_8);
    }

    @Test
    void exactLineWithHeadersNullTimestampAndEmbeddedNewlines() {
        ConnectHeaders headers = new ConnectHeaders();
        headers.add("h1", utf8("abc"), Schema.OPTIONAL_BYTES_SCHEMA);
        headers.add("nul", null, Schema.OPTIONAL_BYTES_SCHEMA);
        headers.add("we\"ird\n", new byte[] {0, (byte) 0xFF}, Schema.OPTIONAL_BYTES_SCHEMA);
        String value = "{\"after\":{\"price\":1.50,\"big\":12345678901234567890123,\"title\":\"Amélie ☕ \\n\"},\r\n"
                + "\t\"op\":\"c\"}\n";
        SinkRecord r = record("lakehouse.public.movies", 3, 42L, utf8("{\"id\": 7}"), utf8(value), null, headers);

        String expected = "{\"topic\":\"lakehouse.public.movies\",\"partition\":3,\"offset\":42,\"timestamp\":null,"
                + "\"key\":{\"id\": 7},"
                + "\"value\":{\"after\":{\"price\":1.50,\"big\":12345678901234567890123,\"title\":\"Amélie ☕ \\n\"},  "
                + "\t\"op\":\"c\"} ,"
                + "\"headers\":{\"h1\":\"YWJj\",\"nul\":null,\"we\\\"ird\\n\":\"AP8=\"}}\n";
        byte[] encoded = encoder.encode(r);
        assertArrayEquals(expected.getBytes(StandardCharsets.UTF_8), encoded);
        // exactly one line: the only LF byte is the terminator, and there is no CR byte
        for (int i = 0; i < encoded.length - 1; i++) {
            assertTrue(encoded[i] != '\n' && encoded[i] != '\r', "line break at byte " + i);
        }
        assertEquals('\n', encoded[encoded.length - 1]);
    }

    @Test
    void nullKeyAndValueTimestampAndNoHeadersKey() {
        SinkRecord r = record("t", 0, 5L, null, null, 1234L, new ConnectHeaders());
        assertEquals("{\"topic\":\"t\",\"partition\":0,\"offset\":5,\"timestamp\":1234,\"key\":null,\"value\":null}\n",
                line(r));
    }

    @Test
    void scalarJsonValuesAreSplicedVerbatim() {
        SinkRecord r = record("t", 0, 1L, utf8("  \"k\\u00e9\"  "), utf8("-0.000e+10"), 1L, new ConnectHeaders());
        assertEquals("{\"topic\":\"t\",\"partition\":0,\"offset\":1,\"timestamp\":1,\"key\":  \"k\\u00e9\"  ,"
                + "\"value\":-0.000e+10}\n", line(r));
    }

    @Test
    void originalTopicPartitionAndOffsetSurviveTopicRenamingTransforms() {
        SinkRecord r = record("lakehouse.public.movies", 2, 9L, "1", "2");
        SinkRecord renamed = r.newRecord("renamed", 7, null, r.key(), null, r.value(), r.timestamp());
        assertTrue(line(renamed).startsWith("{\"topic\":\"lakehouse.public.movies\",\"partition\":2,\"offset\":9,"),
                line(renamed));
    }

    @ParameterizedTest
    @ValueSource(strings = {
        "{\"a\":1} x", // trailing garbage
        "{\"a\":1} {\"b\":2}", // two values
        "1 2",
        "{\"a\":", // truncated
        "{'a':1}", // single quotes
        "NaN",
        "01",
        "\"raw\nnewline\"", // control character inside a string
        "", // empty
        "   ", // only whitespace
        "{\"a\":1,}", // trailing comma
        "not json at all",
    })
    void aValueThatIsNotJsonIsWrittenAsBase64WithTheReason(String value) {
        SinkRecord r = record("t", 1, 17L, "{}", value);
        String b64 = Base64.getEncoder().encodeToString(utf8(value));
        assertEquals("{\"topic\":\"t\",\"partition\":1,\"offset\":17,\"timestamp\":1700000000017,\"key\":{},"
                + "\"value\":null,\"value_raw_b64\":\"" + b64 + "\"}\n", line(r));
        encoder.encode(r);
        assertTrue(encoder.notJson().startsWith("value is not JSON: "), encoder.notJson());
        assertEquals(1, encoder.notJson().split("; ").length, encoder.notJson());
        encoder.encode(record("t", 1, 18L, "{}", "{}"));
        assertNull(encoder.notJson(), "the reason is the last record's");
    }

    @Test
    void aKeyThatIsNotJsonIsNamedAsTheKey() {
        SinkRecord r = record("t", 0, 1L, "k1", "v1");
        assertEquals("{\"topic\":\"t\",\"partition\":0,\"offset\":1,\"timestamp\":1700000000001,"
                + "\"key\":null,\"key_raw_b64\":\"azE=\",\"value\":null,\"value_raw_b64\":\"djE=\"}\n", line(r));
        encoder.encode(r);
        assertTrue(encoder.notJson().startsWith("key is not JSON: "), encoder.notJson());
        assertTrue(encoder.notJson().contains("; value is not JSON: "), encoder.notJson());
    }

    @Test
    void longBinaryIsOneUnbrokenBase64String() {
        byte[] raw = new byte[3000];
        for (int i = 0; i < raw.length; i++) {
            raw[i] = (byte) (i * 7);
        }
        String l = new String(encoder.encode(record("t", 0, 1L, null, raw, null, new ConnectHeaders())),
                StandardCharsets.UTF_8);
        String b64 = Base64.getEncoder().encodeToString(raw);
        assertEquals("{\"topic\":\"t\",\"partition\":0,\"offset\":1,\"timestamp\":null,\"key\":null,"
                + "\"value\":null,\"value_raw_b64\":\"" + b64 + "\"}\n", l);
        assertArrayEquals(raw, Base64.getDecoder().decode(b64));
    }

    @Test
    void aValueThatIsNotBytesIsRefused() {
        SinkRecord r = new SinkRecord("t", 0, null, null, null, 42, 3L);
        DataException e = assertThrows(DataException.class, () -> encoder.encode(r));
        assertTrue(e.getMessage().startsWith("value is not bytes but java.lang.Integer"), e.getMessage());
        assertTrue(e.getMessage().endsWith("(topic t partition 0 offset 3)"), e.getMessage());
    }

    /**
     * The cases in bronze-lines.json, which tests/spark/test_kafka_lines.py also runs through
     * silver's Kafka source: the sink writes exactly the line given for each record.
     */
    @Test
    void theSharedCasesAreTheLinesSilversKafkaSourceMakes() throws IOException {
        List<Map<String, Object>> cases = sharedCases();
        assertTrue(cases.size() >= 10, "cases: " + cases.size());
        Base64.Decoder dec = Base64.getDecoder();
        for (Map<String, Object> c : cases) {
            String key = (String) c.get("key_b64");
            String value = (String) c.get("value_b64");
            SinkRecord r = record((String) c.get("topic"), ((Long) c.get("partition")).intValue(),
                    (Long) c.get("offset"), key == null ? null : dec.decode(key),
                    value == null ? null : dec.decode(value), (Long) c.get("timestamp"), new ConnectHeaders());
            assertEquals(c.get("line") + "\n", line(r), (String) c.get("case"));
        }
    }

    /** bronze-lines.json's "cases": objects of strings, longs and nulls. */
    private static List<Map<String, Object>> sharedCases() throws IOException {
        List<Map<String, Object>> out = new ArrayList<>();
        try (InputStream in = LineEncoderTest.class.getResourceAsStream("bronze-lines.json");
             JsonParser p = new JsonFactory().createParser(in)) {
            assertEquals(JsonToken.START_OBJECT, p.nextToken());
            while (p.nextToken() == JsonToken.FIELD_NAME) {
                String field = p.currentName();
                JsonToken t = p.nextToken();
                if (!field.equals("cases")) {
                    p.skipChildren();
                    continue;
                }
                assertEquals(JsonToken.START_ARRAY, t);
                while (p.nextToken() == JsonToken.START_OBJECT) {
                    Map<String, Object> c = new HashMap<>();
                    while (p.nextToken() == JsonToken.FIELD_NAME) {
                        String name = p.currentName();
                        JsonToken v = p.nextToken();
                        c.put(name, switch (v) {
                            case VALUE_NULL -> null;
                            case VALUE_STRING -> p.getText();
                            case VALUE_NUMBER_INT -> p.getLongValue();
                            default -> throw new AssertionError(name + ": unexpected " + v);
                        });
                    }
                    out.add(c);
                }
            }
        }
        return out;
    }

    @Test
    void nonUtf8EncodingsAreRefused() {
        // UTF-16LE {"a":1}: valid JSON to an auto-detecting parser, but not splicable into a UTF-8 line
        byte[] utf16 = "{\"a\":1}".getBytes(StandardCharsets.UTF_16LE);
        assertTrue(LineEncoder.jsonProblem(utf16).startsWith("NUL byte"), LineEncoder.jsonProblem(utf16));
        byte[] bom = concat(new byte[] {(byte) 0xEF, (byte) 0xBB, (byte) 0xBF}, utf8("{}"));
        assertEquals("starts with a byte order mark", LineEncoder.jsonProblem(bom));
        byte[] latin1 = "\"Amélie\"".getBytes(StandardCharsets.ISO_8859_1);
        assertTrue(LineEncoder.jsonProblem(latin1).startsWith("invalid UTF-8 at byte 3"),
                LineEncoder.jsonProblem(latin1));
        // CESU-8 style encoded surrogate, overlong '/', code point above U+10FFFF
        assertEquals(1, LineEncoder.invalidUtf8At(new byte[] {'"', (byte) 0xED, (byte) 0xA0, (byte) 0x80, '"'}));
        assertEquals(1, LineEncoder.invalidUtf8At(new byte[] {'"', (byte) 0xC0, (byte) 0xAF, '"'}));
        assertEquals(1, LineEncoder.invalidUtf8At(new byte[] {'"', (byte) 0xF4, (byte) 0x90, (byte) 0x80,
            (byte) 0x80, '"'}));
        assertEquals(-1, LineEncoder.invalidUtf8At(utf8("\"Amélie ☕ 𝄞\"")));
        assertNull(LineEncoder.jsonProblem(utf8("\"Amélie ☕ 𝄞\"")));
    }

    private static byte[] concat(byte[] a, byte[] b) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes(a);
        out.writeBytes(b);
        return out.toByteArray();
    }
}

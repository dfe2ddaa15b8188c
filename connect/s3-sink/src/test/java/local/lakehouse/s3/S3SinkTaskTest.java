package local.lakehouse.s3;

import static local.lakehouse.s3.Records.record;
import static local.lakehouse.s3.Records.utf8;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.GZIPInputStream;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.record.TimestampType;
import org.apache.kafka.connect.errors.DataException;
import org.apache.kafka.connect.errors.RetriableException;
import org.apache.kafka.connect.header.ConnectHeaders;
import org.apache.kafka.connect.sink.SinkRecord;
import org.junit.jupiter.api.Test;

class S3SinkTaskTest {
    static final String T = "lakehouse.public.movies";
    static final TopicPartition P0 = new TopicPartition(T, 0);
    static final TopicPartition P1 = new TopicPartition(T, 1);

    final MemoryStore store = new MemoryStore();
    long now = 1_000_000L;
    TestContext ctx;
    S3SinkTask task;

    /** A started task with the base config plus {@code kv} pairs, partitions P0 and P1 opened. */
    S3SinkTask start(String... kv) {
        return start(null, kv);
    }

    S3SinkTask start(TestContext.RecordingReporter reporter, String... kv) {
        Map<String, String> cfg = TestContext.baseConfig();
        cfg.put(S3SinkConfig.FLUSH_INTERVAL_MS, "60000");
        for (int i = 0; i < kv.length; i += 2) {
            cfg.put(kv[i], kv[i + 1]);
        }
        ctx = new TestContext(cfg);
        ctx.reporter = reporter;
        task = new S3SinkTask(c -> store, () -> now);
        task.initialize(ctx);
        task.start(cfg);
        ctx.assignment.addAll(List.of(P0, P1));
        task.open(List.of(P0, P1));
        return task;
    }

    static String value(TopicPartition tp, long offset) {
        return "{\"p\":" + tp.partition() + ",\"n\":" + offset + "}";
    }

    static SinkRecord rec(TopicPartition tp, long offset) {
        return record(tp.topic(), tp.partition(), offset, "{\"id\":" + offset + "}", value(tp, offset));
    }

    static List<SinkRecord> recs(TopicPartition tp, long from, long to) {
        List<SinkRecord> l = new ArrayList<>();
        for (long o = from; o <= to; o++) {
            l.add(rec(tp, o));
        }
        return l;
    }

    static String key(TopicPartition tp, long first, long last, Compression c) {
        return ObjectNames.key("bronze/", tp.topic(), tp.partition(), first, last, c);
    }

    static String key(TopicPartition tp, long first, long last) {
        return key(tp, first, last, Compression.GZIP);
    }

    /** The expected body (uncompressed) of an object holding these records. */
    static String lines(Collection<SinkRecord> records) {
        LineEncoder enc = new LineEncoder();
        StringBuilder b = new StringBuilder();
        for (SinkRecord r : records) {
            b.append(new String(enc.encode(r), StandardCharsets.UTF_8));
        }
        return b.toString();
    }

    String body(String key) {
        MemoryStore.Stored s = store.objects.get(key);
        if (s == null) {
            throw new AssertionError("no object " + key + " in " + store.objects.keySet());
        }
        byte[] b = s.body();
        if (key.endsWith(".gz")) {
            try (GZIPInputStream in = new GZIPInputStream(new ByteArrayInputStream(b))) {
                b = in.readAllBytes();
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        return new String(b, StandardCharsets.UTF_8);
    }

    /** All stored lines of a partition, in object-name (= offset) order. */
    List<String> allLines(TopicPartition tp) {
        List<String> out = new ArrayList<>();
        for (String k : store.objects.keySet()) {
            if (k.startsWith(ObjectNames.directory("bronze/", tp.topic(), tp.partition()))) {
                for (String l : body(k).split("\n")) {
                    out.add(l);
                }
            }
        }
        return out;
    }

    static Map<TopicPartition, OffsetAndMetadata> offsets(Object... tpAndOffset) {
        Map<TopicPartition, OffsetAndMetadata> m = new HashMap<>();
        for (int i = 0; i < tpAndOffset.length; i += 2) {
            m.put((TopicPartition) tpAndOffset[i], new OffsetAndMetadata(((Number) tpAndOffset[i + 1]).longValue()));
        }
        return m;
    }

    static long committed(Map<TopicPartition, OffsetAndMetadata> m, TopicPartition tp) {
        OffsetAndMetadata om = m.get(tp);
        if (om == null) {
            throw new AssertionError("no offset for " + tp + " in " + m);
        }
        return om.offset();
    }

    // ---- 3. flushing ------------------------------------------------------------------------

    @Test
    void flushesByRecordCountAndNotBefore() {
        start(S3SinkConfig.MAX_RECORDS, "3");
        task.put(recs(P0, 0, 1));
        assertTrue(store.objects.isEmpty(), "flushed before file.max.records");
        task.put(recs(P0, 2, 6));
        assertEquals(List.of(key(P0, 0, 2), key(P0, 3, 5)), List.copyOf(store.objects.keySet()));
        assertEquals(lines(recs(P0, 0, 2)), body(key(P0, 0, 2)));
        assertEquals(lines(recs(P0, 3, 5)), body(key(P0, 3, 5)));
        assertEquals(2, ctx.commitRequests);
        // offset 6 is buffered, not stored
        assertEquals(6, committed(task.preCommit(offsets(P0, 7)), P0));
    }

    @Test
    void flushesByBytesWithoutExceedingTheLimit() {
        int lineLen = new LineEncoder().encode(Records.sized(T, 0, 0, 200)).length;
        assertTrue(lineLen > 1024 / 4 && lineLen <= 1024 / 3, "line length " + lineLen);
        start(S3SinkConfig.MAX_BYTES, "1024", S3SinkConfig.COMPRESSION, "none");
        List<SinkRecord> batch = new ArrayList<>();
        for (long o = 0; o < 10; o++) {
            batch.add(Records.sized(T, 0, o, 200));
        }
        task.put(batch);
        // 1024 / lineLen = 3 records per object; the 4th would exceed file.max.bytes
        int per = 1024 / lineLen;
        assertEquals(3, per);
        assertEquals(List.of(key(P0, 0, 2, Compression.NONE), key(P0, 3, 5, Compression.NONE),
                key(P0, 6, 8, Compression.NONE)), List.copyOf(store.objects.keySet()));
        for (MemoryStore.Stored s : store.objects.values()) {
            assertEquals(3 * lineLen, s.body().length);
        }
        assertEquals(lines(batch.subList(0, 3)), body(key(P0, 0, 2, Compression.NONE)));
    }

    @Test
    void flushesByTimeOnEmptyPutsAndAsksForAWakeUp() {
        start(S3SinkConfig.FLUSH_INTERVAL_MS, "1000");
        task.put(recs(P0, 0, 0));
        assertEquals(1000L, ctx.lastTimeout(), "wake-up when the oldest record is due");
        now += 500;
        task.put(recs(P0, 1, 1));
        assertEquals(500L, ctx.lastTimeout());
        now += 499;
        task.put(List.of());
        assertTrue(store.objects.isEmpty(), "flushed before file.flush.interval.ms");
        assertEquals(1L, ctx.lastTimeout());
        now += 1;
        int timeouts = ctx.timeouts.size();
        task.put(List.of());
        assertEquals(List.of(key(P0, 0, 1)), List.copyOf(store.objects.keySet()));
        assertEquals(lines(recs(P0, 0, 1)), body(key(P0, 0, 1)));
        assertEquals(timeouts, ctx.timeouts.size(), "no wake-up needed with nothing buffered");
        assertEquals(1, ctx.commitRequests);
    }

    @Test
    void gzipObjectIsOneStreamOfTheLinesWithNdjsonContentType() throws IOException {
        start(S3SinkConfig.MAX_RECORDS, "5");
        List<SinkRecord> batch = recs(P0, 5, 9);
        task.put(batch);
        String k = "bronze/lakehouse.public.movies/partition=0/"
                + "lakehouse.public.movies+0+00000000000000000005-00000000000000000009.jsonl.gz";
        MemoryStore.Stored s = store.objects.get(k);
        assertEquals(S3SinkTask.CONTENT_TYPE, s.contentType());
        assertEquals("application/x-ndjson", s.contentType());
        assertEquals(0x1f, s.body()[0] & 0xFF);
        assertEquals(0x8b, s.body()[1] & 0xFF);
        ByteArrayOutputStream gunzipped = new ByteArrayOutputStream();
        try (GZIPInputStream in = new GZIPInputStream(new ByteArrayInputStream(s.body()))) {
            in.transferTo(gunzipped);
        }
        assertArrayEquals(lines(batch).getBytes(StandardCharsets.UTF_8), gunzipped.toByteArray());
    }

    // ---- 4. preCommit -----------------------------------------------------------------------

    @Test
    void preCommitNeverPassesAnUnstoredRecord() {
        start(S3SinkConfig.FLUSH_INTERVAL_MS, "1000");
        // nothing seen yet: the worker's offsets are safe
        assertEquals(0, committed(task.preCommit(offsets(P0, 0)), P0));
        task.put(recs(P0, 0, 2));
        assertEquals(0, committed(task.preCommit(offsets(P0, 3)), P0));
        now += 1000;
        task.put(List.of());
        assertEquals(3, committed(task.preCommit(offsets(P0, 3)), P0));
        task.put(recs(P0, 3, 4));
        assertEquals(3, committed(task.preCommit(offsets(P0, 5)), P0));
        // a partition this task never saw records of: the worker's offset passes through
        TopicPartition other = new TopicPartition("other", 0);
        assertEquals(42, committed(task.preCommit(offsets(P0, 5, other, 42)), other));
    }

    // ---- 5. failures and redelivery ---------------------------------------------------------

    @Test
    void failedUploadKeepsTheBufferAndTheRetryStoresEachRecordOnceUnderTheSameName() {
        start(S3SinkConfig.MAX_RECORDS, "3", S3SinkConfig.RETRY_BACKOFF_MS, "1000",
                S3SinkConfig.RETRY_BACKOFF_MAX_MS, "3000");
        List<SinkRecord> batch = recs(P0, 0, 3);
        store.failPuts = 3;
        List<Long> backoffs = new ArrayList<>();
        for (int attempt = 0; attempt < 3; attempt++) {
            RetriableException e = assertThrows(RetriableException.class, () -> task.put(batch));
            assertTrue(e.getMessage().contains("injected put failure"), e.getMessage());
            backoffs.add(ctx.lastTimeout());
            assertTrue(store.objects.isEmpty());
            assertEquals(0, committed(task.preCommit(offsets(P0, 0)), P0));
            assertEquals(0, ctx.commitRequests);
        }
        assertEquals(List.of(1000L, 2000L, 3000L), backoffs);
        // the worker redelivers the same batch after the backoff
        task.put(batch);
        assertEquals(List.of(key(P0, 0, 2)), List.copyOf(store.objects.keySet()));
        assertEquals(List.of(key(P0, 0, 2), key(P0, 0, 2), key(P0, 0, 2), key(P0, 0, 2)), store.putAttempts);
        assertEquals(3, committed(task.preCommit(offsets(P0, 4)), P0));
        // redelivered once more (e.g. after a rewind): still no duplicate line
        task.put(batch);
        now += 60_000;
        task.put(List.of());
        assertEquals(lines(batch), body(key(P0, 0, 2)) + body(key(P0, 3, 3)));
        assertEquals(4, allLines(P0).size());
        assertEquals(4, committed(task.preCommit(offsets(P0, 4)), P0));
        // the backoff starts over after a success
        store.failPuts = 1;
        task.put(recs(P0, 4, 4));
        now += 60_000;
        assertThrows(RetriableException.class, () -> task.put(List.of()));
        assertEquals(1000L, ctx.lastTimeout());
    }

    @Test
    void aFailedTimeFlushIsRetriedWithTheSameContentBeforeNewRecordsAreAdded() {
        start(S3SinkConfig.FLUSH_INTERVAL_MS, "1000");
        task.put(recs(P0, 0, 1));
        now += 1000;
        store.failPuts = 1;
        assertThrows(RetriableException.class, () -> task.put(List.of()));
        now += 1000;
        task.put(recs(P0, 2, 3)); // new records after the failure
        assertEquals(List.of(key(P0, 0, 1)), List.copyOf(store.objects.keySet()));
        assertEquals(lines(recs(P0, 0, 1)), body(key(P0, 0, 1)));
        assertEquals(2, committed(task.preCommit(offsets(P0, 4)), P0));
        now += 1000;
        task.put(List.of());
        assertEquals(lines(recs(P0, 2, 3)), body(key(P0, 2, 3)));
    }

    // ---- 6. restart after a crash -----------------------------------------------------------

    @Test
    void reopenSkipsRecordsAlreadyStoredAndContinuesAfterThem() {
        start(S3SinkConfig.MAX_RECORDS, "5");
        task.put(recs(P0, 0, 11)); // objects 0-4 and 5-9 stored; 10, 11 buffered
        assertEquals(List.of(key(P0, 0, 4), key(P0, 5, 9)), List.copyOf(store.objects.keySet()));
        // crash: offsets never committed; a new task (batching differently) re-reads from offset 0
        start(S3SinkConfig.MAX_RECORDS, "100", S3SinkConfig.FLUSH_INTERVAL_MS, "1000");
        task.put(recs(P0, 0, 13));
        assertEquals(10, committed(task.preCommit(offsets(P0, 14)), P0));
        now += 1000;
        task.put(recs(P0, 14, 14));
        assertEquals(List.of(key(P0, 0, 4), key(P0, 5, 9), key(P0, 10, 14)), List.copyOf(store.objects.keySet()),
                "records up to 9 must not be written again");
        assertEquals(lines(recs(P0, 0, 14)), String.join("\n", allLines(P0)) + "\n");
        assertEquals(15, committed(task.preCommit(offsets(P0, 15)), P0));
    }

    @Test
    void aListingThatFailsInOpenIsRetriedInPut() {
        start(S3SinkConfig.MAX_RECORDS, "2");
        task.put(recs(P0, 0, 1));
        store.failLists = 3; // open() fails (P0 and P1), then the first put fails once
        start(S3SinkConfig.MAX_RECORDS, "2");
        assertThrows(RetriableException.class, () -> task.put(recs(P0, 0, 3)));
        assertEquals(List.of(key(P0, 0, 1)), List.copyOf(store.objects.keySet()));
        assertEquals(0, committed(task.preCommit(offsets(P0, 0)), P0));
        task.put(recs(P0, 0, 3));
        assertEquals(List.of(key(P0, 0, 1), key(P0, 2, 3)), List.copyOf(store.objects.keySet()));
    }

    // ---- 7. errant records ------------------------------------------------------------------

    @Test
    void nonJsonValueIsWrittenToBronzeWithItsBytesInBase64NotReported() {
        // what ByteArrayConverter hands the task for a value that is not JSON: the raw bytes
        TestContext.RecordingReporter reporter = new TestContext.RecordingReporter();
        start(reporter, S3SinkConfig.FLUSH_INTERVAL_MS, "1000");
        byte[] raw = {(byte) 0xFF, (byte) 0xFE, ' ', 'n', 'o', 't', ' ', 'j', 's', 'o', 'n'};
        SinkRecord bad = record(T, 0, 1L, utf8("{\"id\":1}"), raw, 1_700_000_000_001L,
                new ConnectHeaders());
        task.put(List.of(rec(P0, 0), bad, rec(P0, 2)));
        assertEquals(0, reporter.reported.size(), "a non-JSON value is bronze's to keep, not the DLQ's");
        now += 1000;
        task.put(List.of());
        List<String> got = allLines(P0);
        assertEquals(3, got.size(), got.toString());
        assertEquals("{\"topic\":\"" + T + "\",\"partition\":0,\"offset\":1,\"timestamp\":1700000000001,"
                + "\"key\":{\"id\":1},\"value\":null,\"value_raw_b64\":\"//4gbm90IGpzb24=\"}", got.get(1));
        assertEquals(3, committed(task.preCommit(offsets(P0, 3)), P0));
    }

    @Test
    void nonJsonKeyAndStringValueAreWrittenWithTheirBytesInBase64() {
        // a String (StringConverter) is taken as its UTF-8 bytes; no reporter: nothing fails either
        start(S3SinkConfig.FLUSH_INTERVAL_MS, "1000");
        SinkRecord bad = new SinkRecord(T, 0, null, new byte[] {0, (byte) 0xFF, 'n', 'o', 't', ' ', 'j', 's', 'o',
            'n'}, null, "oops, not json", 5L, null, TimestampType.NO_TIMESTAMP_TYPE);
        task.put(List.of(bad));
        now += 1000;
        task.put(List.of());
        assertEquals(List.of("{\"topic\":\"" + T + "\",\"partition\":0,\"offset\":5,\"timestamp\":null,"
                + "\"key\":null,\"key_raw_b64\":\"AP9ub3QganNvbg==\","
                + "\"value\":null,\"value_raw_b64\":\"b29wcywgbm90IGpzb24=\"}"), allLines(P0));
        assertEquals(6, committed(task.preCommit(offsets(P0, 6)), P0));
    }

    @Test
    void oversizedLineGoesToTheReporterNotToTheObjectAndIsCommittedAfterTheFlush() {
        TestContext.RecordingReporter reporter = new TestContext.RecordingReporter();
        start(reporter, S3SinkConfig.MAX_BYTES, "1024", S3SinkConfig.FLUSH_INTERVAL_MS, "1000");
        SinkRecord big = Records.sized(T, 0, 1, 2000);
        List<SinkRecord> batch = List.of(rec(P0, 0), big, rec(P0, 2));
        task.put(batch);
        assertEquals(1, reporter.reported.size());
        assertEquals(big, reporter.reported.get(0).record());
        Throwable error = reporter.reported.get(0).error();
        assertInstanceOf(DataException.class, error);
        assertTrue(error.getMessage().contains("file.max.bytes=1024"), error.getMessage());
        assertTrue(error.getMessage().contains("(topic " + T + " partition 0 offset 1)"), error.getMessage());
        assertEquals(0, committed(task.preCommit(offsets(P0, 3)), P0));
        now += 1000;
        task.put(List.of());
        assertEquals(lines(List.of(rec(P0, 0), rec(P0, 2))), body(key(P0, 0, 2)));
        assertEquals(3, committed(task.preCommit(offsets(P0, 3)), P0));
        // redelivery does not report it twice
        task.put(batch);
        assertEquals(1, reporter.reported.size());
    }

    @Test
    void aValueThatIsNotBytesIsErrant() {
        // what a JsonConverter with schemas would hand the task instead of ByteArrayConverter's byte[]
        TestContext.RecordingReporter reporter = new TestContext.RecordingReporter();
        start(reporter);
        SinkRecord structured = new SinkRecord(T, 0, null, null, null, Map.of("a", 1), 0L);
        task.put(List.of(structured));
        assertEquals(1, reporter.reported.size());
        assertTrue(reporter.reported.get(0).error().getMessage().startsWith("value is not bytes but "),
                reporter.reported.get(0).error().getMessage());
        assertEquals(1, committed(task.preCommit(offsets(P0, 1)), P0));
        assertEquals(0, store.objects.size());
    }

    @Test
    void aRecordWhoseReportFailedIsNotCommitted() {
        TestContext.RecordingReporter reporter = new TestContext.RecordingReporter();
        reporter.completeAtOnce = false;
        start(reporter, S3SinkConfig.MAX_BYTES, "1024");
        task.put(List.of(rec(P0, 0), Records.sized(T, 0, 1, 2000), rec(P0, 2)));
        now += 60_000;
        task.put(List.of());
        assertEquals(lines(List.of(rec(P0, 0), rec(P0, 2))), body(key(P0, 0, 2)));
        reporter.reported.get(0).future().completeExceptionally(new RuntimeException("DLQ down"));
        assertEquals(1, committed(task.preCommit(offsets(P0, 3)), P0));
        assertEquals(1, committed(task.preCommit(offsets(P0, 3)), P0));
    }

    @Test
    void withoutAReporterAnErrantRecordFailsTheTask() {
        start(S3SinkConfig.MAX_BYTES, "1024");
        assertNull(ctx.reporter);
        DataException e = assertThrows(DataException.class,
                () -> task.put(List.of(rec(P0, 0), Records.sized(T, 0, 1, 2000))));
        assertTrue(e.getMessage().contains("file.max.bytes=1024"), e.getMessage());
        assertEquals(0, committed(task.preCommit(offsets(P0, 2)), P0));
    }

    // ---- 8. partitions ----------------------------------------------------------------------

    @Test
    void partitionsAreBufferedIndependently() {
        start(S3SinkConfig.MAX_RECORDS, "2", S3SinkConfig.FLUSH_INTERVAL_MS, "1000");
        task.put(List.of(rec(P0, 10), rec(P1, 0)));
        now += 500;
        task.put(List.of(rec(P0, 11), rec(P1, 1)));
        assertEquals(List.of(key(P0, 10, 11), key(P1, 0, 1)), List.copyOf(store.objects.keySet()));
        task.put(List.of(rec(P0, 12)));
        now += 500;
        task.put(List.of(rec(P1, 2)));
        assertEquals(2, store.objects.size(), "P1's younger buffer must not be flushed with P0's");
        Map<TopicPartition, OffsetAndMetadata> c = task.preCommit(offsets(P0, 13, P1, 3));
        assertEquals(12, committed(c, P0));
        assertEquals(2, committed(c, P1));
        now += 500; // P0's 12 has waited 1000 ms, P1's 2 only 500
        task.put(List.of());
        assertEquals(List.of(key(P0, 10, 11), key(P0, 12, 12), key(P1, 0, 1)), List.copyOf(store.objects.keySet()));
        now += 500;
        task.put(List.of());
        assertEquals(List.of(key(P0, 10, 11), key(P0, 12, 12), key(P1, 0, 1), key(P1, 2, 2)),
                List.copyOf(store.objects.keySet()));
        assertEquals(lines(List.of(rec(P1, 2))), body(key(P1, 2, 2)));
    }

    @Test
    void closeDropsBuffersAndStopClosesTheStore() {
        start(S3SinkConfig.FLUSH_INTERVAL_MS, "1000");
        task.put(List.of(rec(P0, 0), rec(P1, 0)));
        task.close(List.of(P0));
        now += 1000;
        task.put(List.of());
        assertEquals(List.of(key(P1, 0, 0)), List.copyOf(store.objects.keySet()));
        task.stop();
        assertTrue(store.closed);
    }
}

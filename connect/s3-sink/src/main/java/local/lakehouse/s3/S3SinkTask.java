package local.lakehouse.s3;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Function;
import java.util.function.LongSupplier;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.connect.errors.DataException;
import org.apache.kafka.connect.errors.RetriableException;
import org.apache.kafka.connect.sink.ErrantRecordReporter;
import org.apache.kafka.connect.sink.SinkRecord;
import org.apache.kafka.connect.sink.SinkTask;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Buffers each topic partition's records as bronze lines ({@link LineEncoder}) and writes a
 * buffer as one object ({@link ObjectNames}) when it holds {@code file.max.records} records,
 * would grow past {@code file.max.bytes}, or its oldest record has waited
 * {@code file.flush.interval.ms}.
 *
 * <p>Every record that can be a line is written: a key or value that is not JSON goes into its
 * line as base64 ({@code value_raw_b64}), the line silver's Kafka source makes of the same record,
 * and silver quarantines it on either path, so bronze stays the complete record of the topics.
 * Only a record that cannot be a line — one longer than {@code file.max.bytes}, or a key or value
 * that is not bytes (a converter other than ByteArrayConverter) — is errant: it goes to the errant
 * record reporter (the dead letter queue) or, without one, fails the task.
 *
 * <p>Delivery guarantees:
 * <ul>
 *   <li>{@link #preCommit} never returns an offset past a record that is not yet in an object
 *   (or, for an errant record, acknowledged by the dead letter queue reporter).</li>
 *   <li>A failed upload keeps the buffer exactly as it was ("sealed") and is retried with the
 *   same content under the same name; the task throws {@link RetriableException} after
 *   {@code context.timeout(backoff)}, so the worker redelivers the batch after the backoff.
 *   Records at or below the highest offset already accepted for a partition are ignored, so a
 *   redelivered batch adds no line twice.</li>
 *   <li>When a partition is (re)opened, the objects already stored for it are listed and records
 *   at or below the largest stored offset are skipped: records that were stored but whose
 *   offsets were not yet committed before a crash or rebalance are not written again.</li>
 * </ul>
 *
 * <p>Time-based flushing without new records: the worker calls {@code put()} after every
 * consumer poll, also with an empty batch when the poll returned nothing, and it polls for at
 * most the time left until its next offset commit ({@code offset.flush.interval.ms}, 60 s by
 * default) or, for the next poll only, the value of {@code context.timeout(ms)} when smaller.
 * So after each put that leaves records buffered the task asks for a wake-up when the oldest of
 * them is due: buffers are written within about {@code file.flush.interval.ms} even when no
 * more records arrive.
 */
public class S3SinkTask extends SinkTask {
    private static final Logger log = LoggerFactory.getLogger(S3SinkTask.class);
    static final String CONTENT_TYPE = "application/x-ndjson";
    private static final long REPORT_WAIT_MS = 30_000;
    private static final long SUMMARY_EVERY_MS = 60_000;

    private final Function<S3SinkConfig, ObjectStore> storeFactory;
    private final LongSupplier clock;

    private S3SinkConfig config;
    private ObjectStore store;
    private LineEncoder encoder;
    private ErrantRecordReporter reporter;
    private final Map<TopicPartition, PartitionState> partitions = new LinkedHashMap<>();
    private int consecutiveFailures;

    private long objectsWritten;
    private long recordsWritten;
    private long bytesWritten;
    private long recordsReported;
    private long recordsNotJson;
    private long recordsSkipped;
    private long lastSummaryMs;

    public S3SinkTask() {
        this(S3ObjectStore::new, System::currentTimeMillis);
    }

    /** For tests: another object store and clock. */
    S3SinkTask(Function<S3SinkConfig, ObjectStore> storeFactory, LongSupplier clock) {
        this.storeFactory = storeFactory;
        this.clock = clock;
    }

    @Override
    public String version() {
        return Version.get();
    }

    @Override
    public void start(Map<String, String> props) {
        config = new S3SinkConfig(props);
        store = storeFactory.apply(config);
        encoder = new LineEncoder();
        reporter = errantRecordReporter();
        consecutiveFailures = 0;
        lastSummaryMs = clock.getAsLong();
        log.info("S3 sink task started: bucket {}, prefix '{}', compression {}, max {} records / {} bytes / {} ms"
                        + " per object, errant records {}",
                config.bucket(), config.prefix(), config.compression().configName(), config.maxRecords(),
                config.maxBytes(), config.flushIntervalMs(),
                reporter == null ? "fail the task (no errant record reporter)" : "go to the errant record reporter");
    }

    private ErrantRecordReporter errantRecordReporter() {
        if (context == null) {
            return null;
        }
        try {
            return context.errantRecordReporter();
        } catch (NoSuchMethodError | NoClassDefFoundError e) { // worker older than Kafka 2.6
            return null;
        }
    }

    @Override
    public void open(Collection<TopicPartition> assigned) {
        for (TopicPartition tp : assigned) {
            PartitionState st = new PartitionState(tp);
            partitions.put(tp, st);
            try {
                list(st);
            } catch (IOException e) {
                // open() must not fail the task: list again in the first put() for it, with retries
                log.warn("{}: could not list the objects already stored; will retry in put(): {}", tp,
                        e.getMessage());
            }
        }
    }

    @Override
    public void close(Collection<TopicPartition> revoked) {
        for (TopicPartition tp : revoked) {
            PartitionState st = partitions.remove(tp);
            if (st != null && st.count > 0) {
                log.info("{}: dropping {} buffered records (offsets {}..{}); they are read again from the committed offset",
                        tp, st.count, st.first, st.last);
            }
        }
    }

    @Override
    public void stop() {
        partitions.clear();
        if (store != null) {
            try {
                store.close();
            } catch (RuntimeException e) {
                log.warn("closing the object store failed", e);
            }
        }
        logSummary();
    }

    @Override
    public void put(Collection<SinkRecord> records) {
        long now = clock.getAsLong();
        try {
            // 1. partitions whose stored objects are not known yet (a listing failed in open())
            for (SinkRecord r : records) {
                PartitionState st = stateOf(r);
                if (!st.listed) {
                    list(st);
                }
            }
            // 2. buffers whose upload failed: exactly the same content again, under the same name
            for (PartitionState st : partitions.values()) {
                if (st.sealed) {
                    flush(st, "retry");
                }
            }
            // 3. the records
            for (SinkRecord r : records) {
                accept(r, now);
            }
            // 4. buffers that are due (this also runs on the worker's empty puts)
            for (PartitionState st : partitions.values()) {
                String reason = dueReason(st, now);
                if (reason != null) {
                    flush(st, reason);
                }
            }
        } catch (IOException e) {
            throw retriable(e);
        }
        consecutiveFailures = 0;
        for (PartitionState st : partitions.values()) {
            if (st.skippedStored > 0) {
                log.info("{}: skipped {} records at or below offset {}, already stored in objects", st.tp,
                        st.skippedStored, st.storedThrough);
                st.skippedStored = 0;
            }
        }
        scheduleWakeup(now);
        if (now - lastSummaryMs >= SUMMARY_EVERY_MS) {
            lastSummaryMs = now;
            logSummary();
        }
    }

    private PartitionState stateOf(SinkRecord r) {
        TopicPartition tp = new TopicPartition(r.originalTopic(), r.originalKafkaPartition());
        PartitionState st = partitions.get(tp);
        if (st == null) { // not opened through open(): treat as newly assigned
            st = new PartitionState(tp);
            partitions.put(tp, st);
        }
        return st;
    }

    private void accept(SinkRecord r, long now) throws IOException {
        PartitionState st = stateOf(r);
        long offset = r.originalKafkaOffset();
        if (offset <= st.accepted) {
            return; // redelivered: already buffered, stored or reported
        }
        if (offset <= st.storedThrough) {
            st.accepted = offset;
            st.skippedStored++;
            recordsSkipped++;
            return;
        }
        byte[] line;
        try {
            line = encoder.encode(r);
            if (line.length > config.maxBytes()) {
                throw new DataException("record line is " + line.length + " bytes, more than "
                        + S3SinkConfig.MAX_BYTES + "=" + config.maxBytes() + " " + LineEncoder.where(r));
            }
        } catch (DataException e) {
            errant(st, r, e);
            return;
        }
        String notJson = encoder.notJson();
        if (notJson != null) { // kept in bronze as base64; silver quarantines it, on either path
            recordsNotJson++;
            log.warn("{}: record at offset {} written with its bytes in base64 (silver quarantines it): {}", st.tp,
                    offset, notJson);
        }
        if (st.count > 0 && st.bytes + (long) line.length > config.maxBytes()) {
            flush(st, "bytes"); // before the record: an object never exceeds file.max.bytes
        }
        st.append(line, offset, now);
        st.accepted = offset;
        if (st.count >= config.maxRecords()) {
            flush(st, "records");
        } else if (st.bytes >= config.maxBytes()) {
            flush(st, "bytes");
        }
    }

    private void errant(PartitionState st, SinkRecord r, DataException e) {
        if (reporter == null) {
            throw e; // fails the task: nothing is skipped silently
        }
        log.warn("{}: errant record sent to the errant record reporter: {}", st.tp, e.getMessage());
        Future<Void> f = reporter.report(r, e);
        st.reports.add(new Report(r.originalKafkaOffset(), f));
        st.accepted = r.originalKafkaOffset();
        recordsReported++;
    }

    private String dueReason(PartitionState st, long now) {
        if (st.count == 0) {
            return null;
        }
        if (st.count >= config.maxRecords()) {
            return "records";
        }
        if (st.bytes >= config.maxBytes()) {
            return "bytes";
        }
        if (now - st.firstAtMs >= config.flushIntervalMs()) {
            return "time";
        }
        return null;
    }

    private void flush(PartitionState st, String reason) throws IOException {
        Compression compression = config.compression();
        String key = ObjectNames.key(config.prefix(), st.tp.topic(), st.tp.partition(), st.first, st.last,
                compression);
        byte[] body = compression.compress(st.buf, st.bytes);
        long t0 = clock.getAsLong();
        try {
            store.put(key, body, CONTENT_TYPE);
        } catch (IOException e) {
            st.sealed = true; // retried as it is, under the same name
            throw new IOException("upload of " + key + " (" + st.count + " records) failed: " + e.getMessage(), e);
        }
        log.debug("{}: wrote s3://{}/{} ({} records, offsets {}..{}, {} bytes, {} stored, flush by {}, {} ms)",
                st.tp, config.bucket(), key, st.count, st.first, st.last, st.bytes, body.length, reason,
                clock.getAsLong() - t0);
        objectsWritten++;
        recordsWritten += st.count;
        bytesWritten += body.length;
        st.storedThrough = Math.max(st.storedThrough, st.last);
        st.clear();
        context.requestCommit(); // commit the stored records' offsets promptly
    }

    private void list(PartitionState st) throws IOException {
        String dir = ObjectNames.directory(config.prefix(), st.tp.topic(), st.tp.partition());
        long max = -1;
        int objects = 0;
        for (String key : store.listKeys(dir)) {
            OptionalLong last = ObjectNames.lastOffset(key, config.prefix(), st.tp.topic(), st.tp.partition());
            if (last.isPresent()) {
                objects++;
                max = Math.max(max, last.getAsLong());
            }
        }
        st.storedThrough = Math.max(st.storedThrough, max);
        st.listed = true;
        if (objects > 0) {
            log.info("{}: {} objects already stored under s3://{}/{}, up to offset {}; records up to it are skipped",
                    st.tp, objects, config.bucket(), dir, max);
        }
    }

    private RetriableException retriable(IOException e) {
        consecutiveFailures++;
        long backoff = backoffMs(consecutiveFailures);
        context.timeout(backoff);
        log.warn("S3 call failed (attempt {}), retrying in {} ms; records stay buffered: {}", consecutiveFailures,
                backoff, e.getMessage());
        return new RetriableException(e.getMessage(), e);
    }

    /** retry.backoff.ms doubled for each failure after the first, at most retry.backoff.max.ms. */
    long backoffMs(int failures) {
        long max = config.retryBackoffMaxMs();
        long b = config.retryBackoffMs();
        for (int i = 1; i < failures && b < max; i++) {
            b *= 2;
        }
        return Math.min(b, max);
    }

    private void scheduleWakeup(long now) {
        long wait = Long.MAX_VALUE;
        for (PartitionState st : partitions.values()) {
            if (st.count > 0) {
                wait = Math.min(wait, st.firstAtMs + config.flushIntervalMs() - now);
            }
        }
        if (wait != Long.MAX_VALUE) {
            context.timeout(Math.max(1, wait));
        }
    }

    @Override
    public Map<TopicPartition, OffsetAndMetadata> preCommit(Map<TopicPartition, OffsetAndMetadata> currentOffsets) {
        Map<TopicPartition, OffsetAndMetadata> safe = new HashMap<>();
        for (Map.Entry<TopicPartition, OffsetAndMetadata> e : currentOffsets.entrySet()) {
            TopicPartition tp = e.getKey();
            OffsetAndMetadata current = e.getValue();
            PartitionState st = partitions.get(tp);
            if (st == null) { // nothing of it passed through this task since it was assigned
                safe.put(tp, current);
                continue;
            }
            // everything delivered before the first buffered record is stored, reported or skipped
            long offset = st.count > 0 ? st.first : current.offset();
            long unreported = st.awaitReports();
            offset = Math.min(offset, unreported);
            safe.put(tp, new OffsetAndMetadata(offset, current.metadata()));
        }
        return safe;
    }

    private void logSummary() {
        log.info("S3 sink task: {} objects, {} records, {} bytes written ({} records with a key or value that is"
                + " not JSON, in base64); {} errant records reported; {} records skipped as already stored",
                objectsWritten, recordsWritten, bytesWritten, recordsNotJson, recordsReported, recordsSkipped);
    }

    /** A record handed to the errant record reporter, not yet known to be in the dead letter queue. */
    private record Report(long offset, Future<Void> future) {
    }

    /** One topic partition's buffer and progress. */
    private static final class PartitionState {
        final TopicPartition tp;
        /** false until the objects already stored for this partition have been listed */
        boolean listed;
        /** largest offset known to be in an object (-1: none) */
        long storedThrough = -1;
        /** largest offset accepted: buffered, stored, reported or skipped (-1: none yet) */
        long accepted = -1;
        /** a buffer whose upload failed: no record is added until it is written */
        boolean sealed;
        byte[] buf = new byte[0];
        int bytes;
        int count;
        long first = -1;
        long last = -1;
        long firstAtMs;
        long skippedStored;
        final List<Report> reports = new ArrayList<>();

        PartitionState(TopicPartition tp) {
            this.tp = tp;
        }

        void append(byte[] line, long offset, long now) {
            if (sealed) {
                throw new IllegalStateException(tp + ": buffer is sealed until its upload succeeds");
            }
            if (bytes + line.length > buf.length) {
                long want = Math.max(64L * 1024, Math.max((long) buf.length * 2, (long) bytes + line.length));
                byte[] grown = new byte[(int) Math.min(want, Integer.MAX_VALUE - 16)];
                System.arraycopy(buf, 0, grown, 0, bytes);
                buf = grown;
            }
            System.arraycopy(line, 0, buf, bytes, line.length);
            bytes += line.length;
            if (count == 0) {
                first = offset;
                firstAtMs = now;
            }
            last = offset;
            count++;
        }

        void clear() {
            bytes = 0;
            count = 0;
            first = -1;
            last = -1;
            sealed = false;
            if (buf.length > 4 * 1024 * 1024) {
                buf = new byte[0]; // do not hold a large buffer for an idle partition
            }
        }

        /**
         * Waits for the reported records' futures; returns the smallest offset of one that did not
         * complete successfully (it must not be committed past), or Long.MAX_VALUE.
         */
        long awaitReports() {
            long firstBad = Long.MAX_VALUE;
            for (Iterator<Report> it = reports.iterator(); it.hasNext(); ) {
                Report r = it.next();
                try {
                    r.future().get(REPORT_WAIT_MS, TimeUnit.MILLISECONDS);
                    it.remove();
                } catch (ExecutionException e) {
                    log.error("{}: errant record at offset {} could not be reported; its offset is not committed",
                            tp, r.offset(), e.getCause());
                    firstBad = Math.min(firstBad, r.offset());
                } catch (TimeoutException e) {
                    log.warn("{}: errant record at offset {} not yet acknowledged; its offset is not committed yet",
                            tp, r.offset());
                    firstBad = Math.min(firstBad, r.offset());
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    firstBad = Math.min(firstBad, r.offset());
                }
            }
            return firstBad;
        }
    }
}

package local.lakehouse.s3;

import java.nio.charset.StandardCharsets;
import org.apache.kafka.common.record.TimestampType;
import org.apache.kafka.connect.header.ConnectHeaders;
import org.apache.kafka.connect.sink.SinkRecord;

/** SinkRecords as a ByteArrayConverter worker delivers them. */
final class Records {
    private Records() {
    }

    static byte[] utf8(String s) {
        return s == null ? null : s.getBytes(StandardCharsets.UTF_8);
    }

    static SinkRecord record(String topic, int partition, long offset, String key, String value) {
        return new SinkRecord(topic, partition, null, utf8(key), null, utf8(value), offset, 1_700_000_000_000L + offset,
                TimestampType.CREATE_TIME, new ConnectHeaders());
    }

    static SinkRecord record(String topic, int partition, long offset, byte[] key, byte[] value, Long timestamp,
                             ConnectHeaders headers) {
        return new SinkRecord(topic, partition, null, key, null, value, offset, timestamp,
                timestamp == null ? TimestampType.NO_TIMESTAMP_TYPE : TimestampType.CREATE_TIME, headers);
    }

    /** A record whose line is a known number of bytes: value {"v":"xxx…"} padded to the size. */
    static SinkRecord sized(String topic, int partition, long offset, int valuePadding) {
        return record(topic, partition, offset, null, "{\"v\":\"" + "x".repeat(valuePadding) + "\"}");
    }
}

package local.lakehouse.s3;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import org.apache.kafka.common.config.ConfigException;
import org.apache.kafka.common.config.ConfigValue;
import org.junit.jupiter.api.Test;

class S3SinkConfigTest {
    private static Map<String, String> with(String key, String value) {
        Map<String, String> m = TestContext.baseConfig();
        if (value == null) {
            m.remove(key);
        } else {
            m.put(key, value);
        }
        return m;
    }

    private static void assertRejected(String key, String value) {
        ConfigException e = assertThrows(ConfigException.class, () -> new S3SinkConfig(with(key, value)));
        assertTrue(e.getMessage().contains(key), e.getMessage());
    }

    @Test
    void defaults() {
        S3SinkConfig c = new S3SinkConfig(Map.of(S3SinkConfig.BUCKET, "lake"));
        assertNull(c.endpoint());
        assertEquals("us-east-1", c.region());
        assertEquals("lake", c.bucket());
        assertNull(c.accessKeyId());
        assertTrue(c.pathStyleAccess());
        assertEquals("", c.prefix());
        assertEquals(Compression.GZIP, c.compression());
        assertEquals(5000, c.maxRecords());
        assertEquals(16L * 1024 * 1024, c.maxBytes());
        assertEquals(1000L, c.flushIntervalMs());
        assertEquals(1000L, c.retryBackoffMs());
        assertEquals(30000L, c.retryBackoffMaxMs());
    }

    @Test
    void explicitValues() {
        Map<String, String> m = TestContext.baseConfig();
        m.put(S3SinkConfig.ENDPOINT, "http://127.0.0.1:9000");
        m.put(S3SinkConfig.ACCESS_KEY_ID, "id");
        m.put(S3SinkConfig.SECRET_ACCESS_KEY, "secret");
        m.put(S3SinkConfig.COMPRESSION, "NONE");
        m.put(S3SinkConfig.PATH_STYLE, "false");
        S3SinkConfig c = new S3SinkConfig(m);
        assertEquals("http://127.0.0.1:9000", c.endpoint());
        assertEquals("id", c.accessKeyId());
        assertEquals("secret", c.secretAccessKey());
        assertEquals(Compression.NONE, c.compression());
        assertFalse(c.pathStyleAccess());
        assertEquals("bronze/", c.prefix());
        // the secret is not printed
        assertFalse(c.values().toString().contains("=secret"), c.values().toString());
    }

    @Test
    void badValuesNameTheirKey() {
        assertRejected(S3SinkConfig.BUCKET, null);
        assertRejected(S3SinkConfig.BUCKET, "");
        assertRejected(S3SinkConfig.PREFIX, "bronze");
        assertRejected(S3SinkConfig.PREFIX, "/bronze/");
        assertRejected(S3SinkConfig.COMPRESSION, "zstd");
        assertRejected(S3SinkConfig.COMPRESSION, "snappy");
        assertRejected(S3SinkConfig.MAX_RECORDS, "0");
        assertRejected(S3SinkConfig.MAX_BYTES, "1023");
        assertRejected(S3SinkConfig.FLUSH_INTERVAL_MS, "9");
        assertRejected(S3SinkConfig.ENDPOINT, "127.0.0.1:9000");
        assertRejected(S3SinkConfig.ENDPOINT, "ftp://host/");
        Map<String, String> m = with(S3SinkConfig.ACCESS_KEY_ID, "id");
        ConfigException e = assertThrows(ConfigException.class, () -> new S3SinkConfig(m));
        assertTrue(e.getMessage().contains(S3SinkConfig.SECRET_ACCESS_KEY), e.getMessage());
        Map<String, String> m2 = with(S3SinkConfig.SECRET_ACCESS_KEY, "s");
        e = assertThrows(ConfigException.class, () -> new S3SinkConfig(m2));
        assertTrue(e.getMessage().contains(S3SinkConfig.ACCESS_KEY_ID), e.getMessage());
        Map<String, String> m3 = with(S3SinkConfig.RETRY_BACKOFF_MS, "5000");
        m3.put(S3SinkConfig.RETRY_BACKOFF_MAX_MS, "1000");
        e = assertThrows(ConfigException.class, () -> new S3SinkConfig(m3));
        assertTrue(e.getMessage().contains(S3SinkConfig.RETRY_BACKOFF_MAX_MS), e.getMessage());
    }

    @Test
    void connectorStartRejectsBadConfigAndValidateReportsPerKey() {
        S3SinkConnector connector = new S3SinkConnector();
        ConfigException e = assertThrows(ConfigException.class,
                () -> connector.start(with(S3SinkConfig.PREFIX, "no-slash")));
        assertTrue(e.getMessage().contains(S3SinkConfig.PREFIX), e.getMessage());

        Map<String, String> m = with(S3SinkConfig.ACCESS_KEY_ID, "id");
        m.put("connector.class", S3SinkConnector.class.getName());
        m.put("topics", "t");
        Map<String, List<String>> errors = connector.validate(m).configValues().stream()
                .filter(v -> !v.errorMessages().isEmpty())
                .collect(Collectors.toMap(ConfigValue::name, ConfigValue::errorMessages));
        assertEquals(List.of(S3SinkConfig.SECRET_ACCESS_KEY), List.copyOf(errors.keySet()));

        Map<String, String> bad = new HashMap<>(m);
        bad.remove(S3SinkConfig.BUCKET);
        bad.put(S3SinkConfig.SECRET_ACCESS_KEY, "s");
        errors = connector.validate(bad).configValues().stream()
                .filter(v -> !v.errorMessages().isEmpty())
                .collect(Collectors.toMap(ConfigValue::name, ConfigValue::errorMessages));
        assertEquals(List.of(S3SinkConfig.BUCKET), List.copyOf(errors.keySet()));
    }

    @Test
    void taskConfigsAreCopiesForEveryTask() {
        S3SinkConnector connector = new S3SinkConnector();
        Map<String, String> props = TestContext.baseConfig();
        props.put("topics.regex", "lakehouse\\..+");
        connector.start(props);
        List<Map<String, String>> configs = connector.taskConfigs(3);
        assertEquals(3, configs.size());
        for (Map<String, String> c : configs) {
            assertEquals(props, c);
        }
        assertEquals(S3SinkTask.class, connector.taskClass());
        assertEquals("0", connector.version());
        assertEquals("0", new S3SinkTask().version());
    }
}

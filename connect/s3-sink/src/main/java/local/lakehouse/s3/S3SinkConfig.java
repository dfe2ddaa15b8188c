package local.lakehouse.s3;

import java.net.URI;
import java.net.URISyntaxException;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.apache.kafka.common.config.AbstractConfig;
import org.apache.kafka.common.config.ConfigDef;
import org.apache.kafka.common.config.ConfigDef.Importance;
import org.apache.kafka.common.config.ConfigDef.Range;
import org.apache.kafka.common.config.ConfigDef.Type;
import org.apache.kafka.common.config.ConfigDef.Width;
import org.apache.kafka.common.config.ConfigException;
import org.apache.kafka.common.config.types.Password;

/** The connector's configuration (names shaped like Aiven's S3 sink connector's). */
public final class S3SinkConfig extends AbstractConfig {
    public static final String ENDPOINT = "aws.s3.endpoint";
    public static final String REGION = "aws.s3.region";
    public static final String BUCKET = "aws.s3.bucket.name";
    public static final String ACCESS_KEY_ID = "aws.access.key.id";
    public static final String SECRET_ACCESS_KEY = "aws.secret.access.key";
    public static final String PATH_STYLE = "aws.s3.path.style.access.enabled";
    public static final String PREFIX = "file.name.prefix";
    public static final String COMPRESSION = "file.compression.type";
    public static final String MAX_RECORDS = "file.max.records";
    public static final String MAX_BYTES = "file.max.bytes";
    public static final String FLUSH_INTERVAL_MS = "file.flush.interval.ms";
    public static final String RETRY_BACKOFF_MS = "retry.backoff.ms";
    public static final String RETRY_BACKOFF_MAX_MS = "retry.backoff.max.ms";

    /** Objects are built in memory: keep one well below a Java array's limit. */
    static final long MAX_BYTES_LIMIT = 1L << 30;

    private static final String S3 = "S3";
    private static final String FILES = "Files";
    private static final String RETRIES = "Retries";

    public static final ConfigDef CONFIG_DEF = new ConfigDef()
            .define(ENDPOINT, Type.STRING, "", new EndpointValidator(), Importance.HIGH,
                    "S3 endpoint URL, e.g. http://127.0.0.1:9000 for MinIO. Empty: the AWS endpoint of the region.",
                    S3, 1, Width.LONG, "S3 endpoint")
            .define(REGION, Type.STRING, "us-east-1", new ConfigDef.NonEmptyString(), Importance.MEDIUM,
                    "S3 region (used for request signing).", S3, 2, Width.SHORT, "S3 region")
            .define(BUCKET, Type.STRING, ConfigDef.NO_DEFAULT_VALUE, new ConfigDef.NonEmptyString(),
                    Importance.HIGH, "Bucket the objects are written to (it must exist).", S3, 3, Width.MEDIUM,
                    "Bucket")
            .define(ACCESS_KEY_ID, Type.PASSWORD, null, Importance.HIGH,
                    "Access key id. Give it with " + SECRET_ACCESS_KEY + ", or neither to use the AWS default "
                            + "credentials chain (environment, system properties, profile, container/instance role).",
                    S3, 4, Width.MEDIUM, "Access key id")
            .define(SECRET_ACCESS_KEY, Type.PASSWORD, null, Importance.HIGH,
                    "Secret access key; see " + ACCESS_KEY_ID + ".", S3, 5, Width.MEDIUM, "Secret access key")
            .define(PATH_STYLE, Type.BOOLEAN, true, Importance.MEDIUM,
                    "Path-style requests (http://host/bucket/key), as MinIO needs; false for virtual-hosted style.",
                    S3, 6, Width.SHORT, "Path-style access")
            .define(PREFIX, Type.STRING, "", new PrefixValidator(), Importance.MEDIUM,
                    "Prepended to every object key; empty or ending with '/'. Objects are named "
                            + "<prefix><topic>/partition=<p>/<topic>+<p>+<first offset>-<last offset>.jsonl[.gz].",
                    FILES, 1, Width.MEDIUM, "Object key prefix")
            .define(COMPRESSION, Type.STRING, Compression.GZIP.configName(),
                    ConfigDef.CaseInsensitiveValidString.in(Compression.configNames()), Importance.MEDIUM,
                    "Compression of each whole object: none or gzip (adds .gz to the name; no Content-Encoding).",
                    FILES, 2, Width.SHORT, "Compression")
            .define(MAX_RECORDS, Type.INT, 5000, Range.atLeast(1), Importance.MEDIUM,
                    "A partition's buffer is written as an object once it holds this many records.",
                    FILES, 3, Width.SHORT, "Max records per object")
            .define(MAX_BYTES, Type.LONG, 16L * 1024 * 1024, Range.between(1024, MAX_BYTES_LIMIT), Importance.MEDIUM,
                    "Most uncompressed bytes in one object: a buffer is written before it would grow past this. "
                            + "A single record whose line is larger is an errant record (dead letter queue).",
                    FILES, 4, Width.SHORT, "Max bytes per object")
            .define(FLUSH_INTERVAL_MS, Type.LONG, 1000L, Range.atLeast(10), Importance.MEDIUM,
                    "A partition's buffer is written once its oldest record has waited this long.",
                    FILES, 5, Width.SHORT, "Flush interval (ms)")
            .define(RETRY_BACKOFF_MS, Type.LONG, 1000L, Range.atLeast(1), Importance.LOW,
                    "First wait after a failed S3 call; doubles on each further failure.",
                    RETRIES, 1, Width.SHORT, "Retry backoff (ms)")
            .define(RETRY_BACKOFF_MAX_MS, Type.LONG, 30000L, Range.atLeast(1), Importance.LOW,
                    "Longest wait between retries of a failed S3 call (at least " + RETRY_BACKOFF_MS + ").",
                    RETRIES, 2, Width.SHORT, "Max retry backoff (ms)");

    public S3SinkConfig(Map<String, String> props) {
        super(CONFIG_DEF, props);
        List<Problem> problems = crossChecks(this);
        if (!problems.isEmpty()) {
            throw problems.get(0).exception();
        }
    }

    /** A configuration problem that involves more than one key, blamed on {@code key}. */
    record Problem(String key, Object value, String message) {
        ConfigException exception() {
            return new ConfigException(key, value, message);
        }
    }

    /** Checks that involve more than one key, on values the ConfigDef has parsed. */
    static List<Problem> crossChecks(AbstractConfig c) {
        List<Problem> problems = new ArrayList<>();
        Password id = c.getPassword(ACCESS_KEY_ID);
        Password secret = c.getPassword(SECRET_ACCESS_KEY);
        boolean hasId = id != null && !id.value().isEmpty();
        boolean hasSecret = secret != null && !secret.value().isEmpty();
        if (hasId && !hasSecret) {
            problems.add(new Problem(SECRET_ACCESS_KEY, null,
                    "must be set when " + ACCESS_KEY_ID + " is set (give both or neither)"));
        } else if (hasSecret && !hasId) {
            problems.add(new Problem(ACCESS_KEY_ID, null,
                    "must be set when " + SECRET_ACCESS_KEY + " is set (give both or neither)"));
        }
        long backoff = c.getLong(RETRY_BACKOFF_MS);
        long backoffMax = c.getLong(RETRY_BACKOFF_MAX_MS);
        if (backoffMax < backoff) {
            problems.add(new Problem(RETRY_BACKOFF_MAX_MS, backoffMax,
                    "must be at least " + RETRY_BACKOFF_MS + " (" + backoff + ")"));
        }
        return problems;
    }

    public String endpoint() {
        String e = getString(ENDPOINT);
        return e == null || e.isBlank() ? null : e.trim();
    }

    public String region() {
        return getString(REGION).trim();
    }

    public String bucket() {
        return getString(BUCKET).trim();
    }

    /** Null when the default credentials chain is to be used. */
    public String accessKeyId() {
        Password p = getPassword(ACCESS_KEY_ID);
        return p == null || p.value().isEmpty() ? null : p.value();
    }

    public String secretAccessKey() {
        Password p = getPassword(SECRET_ACCESS_KEY);
        return p == null || p.value().isEmpty() ? null : p.value();
    }

    public boolean pathStyleAccess() {
        return getBoolean(PATH_STYLE);
    }

    public String prefix() {
        return getString(PREFIX);
    }

    public Compression compression() {
        return Compression.fromConfig(getString(COMPRESSION).toLowerCase(Locale.ROOT));
    }

    public int maxRecords() {
        return getInt(MAX_RECORDS);
    }

    public long maxBytes() {
        return getLong(MAX_BYTES);
    }

    public long flushIntervalMs() {
        return getLong(FLUSH_INTERVAL_MS);
    }

    public long retryBackoffMs() {
        return getLong(RETRY_BACKOFF_MS);
    }

    public long retryBackoffMaxMs() {
        return getLong(RETRY_BACKOFF_MAX_MS);
    }

    static final class PrefixValidator implements ConfigDef.Validator {
        @Override
        public void ensureValid(String name, Object value) {
            String s = value == null ? "" : (String) value;
            if (!s.isEmpty() && !s.endsWith("/")) {
                throw new ConfigException(name, value, "must be empty or end with '/'");
            }
            if (s.startsWith("/")) {
                throw new ConfigException(name, value, "must not start with '/'");
            }
        }

        @Override
        public String toString() {
            return "empty, or ending with '/' (not starting with '/')";
        }
    }

    static final class EndpointValidator implements ConfigDef.Validator {
        @Override
        public void ensureValid(String name, Object value) {
            String s = value == null ? "" : ((String) value).trim();
            if (s.isEmpty()) {
                return;
            }
            try {
                URI u = new URI(s);
                String scheme = u.getScheme() == null ? "" : u.getScheme().toLowerCase(Locale.ROOT);
                if (!(scheme.equals("http") || scheme.equals("https")) || u.getHost() == null) {
                    throw new ConfigException(name, value, "must be an http:// or https:// URL with a host");
                }
            } catch (URISyntaxException e) {
                throw new ConfigException(name, value, "not a URL: " + e.getMessage());
            }
        }

        @Override
        public String toString() {
            return "empty, or an http(s) URL";
        }
    }
}

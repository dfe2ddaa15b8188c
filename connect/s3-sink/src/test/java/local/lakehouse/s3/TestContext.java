package local.lakehouse.s3;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Future;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.metrics.PluginMetrics;
import org.apache.kafka.connect.sink.ErrantRecordReporter;
import org.apache.kafka.connect.sink.SinkRecord;
import org.apache.kafka.connect.sink.SinkTaskContext;

/** A SinkTaskContext that records what the task asks of the worker. */
final class TestContext implements SinkTaskContext {
    final Map<String, String> configs;
    final Set<TopicPartition> assignment = new HashSet<>();
    final List<Long> timeouts = new ArrayList<>();
    int commitRequests;
    ErrantRecordReporter reporter;

    TestContext(Map<String, String> configs) {
        this.configs = configs;
    }

    @Override
    public Map<String, String> configs() {
        return configs;
    }

    @Override
    public void offset(Map<TopicPartition, Long> offsets) {
        throw new AssertionError("the task must not reset offsets");
    }

    @Override
    public void offset(TopicPartition tp, long offset) {
        throw new AssertionError("the task must not reset offsets");
    }

    @Override
    public void timeout(long timeoutMs) {
        timeouts.add(timeoutMs);
    }

    Long lastTimeout() {
        return timeouts.isEmpty() ? null : timeouts.get(timeouts.size() - 1);
    }

    @Override
    public Set<TopicPartition> assignment() {
        return assignment;
    }

    @Override
    public void pause(TopicPartition... partitions) {
    }

    @Override
    public void resume(TopicPartition... partitions) {
    }

    @Override
    public void requestCommit() {
        commitRequests++;
    }

    @Override
    public ErrantRecordReporter errantRecordReporter() {
        return reporter;
    }

    @Override
    public PluginMetrics pluginMetrics() {
        return null;
    }

    /** Records what is reported; each future completes when {@code complete} says so. */
    static final class RecordingReporter implements ErrantRecordReporter {
        record Reported(SinkRecord record, Throwable error, CompletableFuture<Void> future) {
        }

        final List<Reported> reported = new ArrayList<>();
        boolean completeAtOnce = true;

        @Override
        public Future<Void> report(SinkRecord record, Throwable error) {
            CompletableFuture<Void> f = new CompletableFuture<>();
            if (completeAtOnce) {
                f.complete(null);
            }
            reported.add(new Reported(record, error, f));
            return f;
        }
    }

    static Map<String, String> baseConfig() {
        Map<String, String> m = new HashMap<>();
        m.put(S3SinkConfig.BUCKET, "lake");
        m.put(S3SinkConfig.PREFIX, "bronze/");
        return m;
    }
}

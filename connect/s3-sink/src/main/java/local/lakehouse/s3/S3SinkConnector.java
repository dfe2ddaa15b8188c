package local.lakehouse.s3;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.kafka.common.config.Config;
import org.apache.kafka.common.config.ConfigDef;
import org.apache.kafka.common.config.AbstractConfig;
import org.apache.kafka.common.config.ConfigValue;
import org.apache.kafka.connect.connector.Task;
import org.apache.kafka.connect.sink.SinkConnector;

/**
 * Bronze sink: writes every record of its topics, byte for byte, as one JSON line into
 * (gzip'd) objects on S3 / MinIO, one object stream per topic partition. See {@link S3SinkTask}.
 */
public class S3SinkConnector extends SinkConnector {
    private Map<String, String> props;

    @Override
    public String version() {
        return Version.get();
    }

    @Override
    public void start(Map<String, String> props) {
        new S3SinkConfig(props); // fail fast: a ConfigException names the bad key
        this.props = new HashMap<>(props);
    }

    @Override
    public Class<? extends Task> taskClass() {
        return S3SinkTask.class;
    }

    @Override
    public List<Map<String, String>> taskConfigs(int maxTasks) {
        List<Map<String, String>> configs = new ArrayList<>(maxTasks);
        for (int i = 0; i < maxTasks; i++) {
            configs.add(new HashMap<>(props));
        }
        return configs;
    }

    @Override
    public void stop() {
        // nothing held
    }

    @Override
    public ConfigDef config() {
        return S3SinkConfig.CONFIG_DEF;
    }

    /** The per-key checks of the ConfigDef plus those that involve two keys. */
    @Override
    public Config validate(Map<String, String> connectorConfigs) {
        Config config = super.validate(connectorConfigs);
        boolean clean = config.configValues().stream().allMatch(v -> v.errorMessages().isEmpty());
        if (clean) {
            List<S3SinkConfig.Problem> problems =
                    S3SinkConfig.crossChecks(new AbstractConfig(S3SinkConfig.CONFIG_DEF, connectorConfigs, false));
            for (ConfigValue v : config.configValues()) {
                for (S3SinkConfig.Problem p : problems) {
                    if (p.key().equals(v.name())) {
                        v.addErrorMessage(p.exception().getMessage());
                    }
                }
            }
        }
        return config;
    }
}

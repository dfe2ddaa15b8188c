package local.lakehouse.s3;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/** In-memory {@link ObjectStore} that can be told to fail. */
final class MemoryStore implements ObjectStore {
    record Stored(byte[] body, String contentType) {
    }

    final TreeMap<String, Stored> objects = new TreeMap<>();
    /** every put attempt's key, failed ones included */
    final List<String> putAttempts = new ArrayList<>();
    int failPuts;
    int failLists;
    int lists;
    boolean closed;

    @Override
    public void put(String key, byte[] body, String contentType) throws IOException {
        putAttempts.add(key);
        if (failPuts > 0) {
            failPuts--;
            throw new IOException("injected put failure");
        }
        objects.put(key, new Stored(body.clone(), contentType));
    }

    @Override
    public List<String> listKeys(String prefix) throws IOException {
        lists++;
        if (failLists > 0) {
            failLists--;
            throw new IOException("injected list failure");
        }
        List<String> keys = new ArrayList<>();
        for (Map.Entry<String, Stored> e : objects.tailMap(prefix, true).entrySet()) {
            if (!e.getKey().startsWith(prefix)) {
                break;
            }
            keys.add(e.getKey());
        }
        return keys;
    }

    @Override
    public void close() {
        closed = true;
    }
}

package local.lakehouse.s3;

import java.io.IOException;
import java.util.List;

/** The two object-store calls the sink makes (S3 in production, in memory in unit tests). */
public interface ObjectStore extends AutoCloseable {
    /** Writes (or overwrites) one object. */
    void put(String key, byte[] body, String contentType) throws IOException;

    /** All keys that start with {@code prefix}, in the store's (lexicographic) order. */
    List<String> listKeys(String prefix) throws IOException;

    @Override
    void close();
}

package local.lakehouse.s3;

import java.io.IOException;
import java.net.URI;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.AwsCredentialsProvider;
import software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.core.sync.RequestBody;
import software.amazon.awssdk.http.urlconnection.UrlConnectionHttpClient;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.S3ClientBuilder;
import software.amazon.awssdk.services.s3.model.ListObjectsV2Request;
import software.amazon.awssdk.services.s3.model.PutObjectRequest;
import software.amazon.awssdk.services.s3.model.S3Object;

/** {@link ObjectStore} on the AWS SDK v2 synchronous S3 client (works with MinIO). */
public final class S3ObjectStore implements ObjectStore {
    private final S3Client client;
    private final String bucket;

    public S3ObjectStore(S3SinkConfig config) {
        this.bucket = config.bucket();
        S3ClientBuilder builder = S3Client.builder()
                // Given explicitly: no reliance on the SDK's HTTP-client service loading, which a
                // Connect plugin class loader may not see as the SDK expects.
                .httpClient(UrlConnectionHttpClient.builder()
                        .connectionTimeout(Duration.ofSeconds(10))
                        .socketTimeout(Duration.ofSeconds(60))
                        .build())
                .region(Region.of(config.region()))
                .credentialsProvider(credentials(config))
                .forcePathStyle(config.pathStyleAccess());
        if (config.endpoint() != null) {
            builder.endpointOverride(URI.create(config.endpoint()));
        }
        this.client = builder.build();
    }

    /** For tests: another S3 client. */
    S3ObjectStore(S3Client client, String bucket) {
        this.client = client;
        this.bucket = bucket;
    }

    private static AwsCredentialsProvider credentials(S3SinkConfig config) {
        if (config.accessKeyId() == null) {
            return DefaultCredentialsProvider.create();
        }
        return StaticCredentialsProvider.create(
                AwsBasicCredentials.create(config.accessKeyId(), config.secretAccessKey()));
    }

    @Override
    public void put(String key, byte[] body, String contentType) throws IOException {
        try {
            client.putObject(PutObjectRequest.builder().bucket(bucket).key(key).contentType(contentType).build(),
                    RequestBody.fromBytes(body));
        } catch (RuntimeException e) {
            // SdkException, and what escapes the SDK's retries as unchecked: an UncheckedIOException
            // ("Unexpected end of file from server") when the store goes away mid-request
            throw new IOException("PUT s3://" + bucket + "/" + key + " failed: " + e, e);
        }
    }

    @Override
    public List<String> listKeys(String prefix) throws IOException {
        List<String> keys = new ArrayList<>();
        try {
            for (S3Object o : client.listObjectsV2Paginator(
                    ListObjectsV2Request.builder().bucket(bucket).prefix(prefix).build()).contents()) {
                keys.add(o.key());
            }
        } catch (RuntimeException e) { // as in put()
            throw new IOException("LIST s3://" + bucket + "/" + prefix + " failed: " + e, e);
        }
        return keys;
    }

    @Override
    public void close() {
        client.close();
    }
}

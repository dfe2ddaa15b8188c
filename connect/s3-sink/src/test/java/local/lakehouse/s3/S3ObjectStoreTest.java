package local.lakehouse.s3;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.reflect.Proxy;
import java.net.SocketException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.Map;
import org.junit.jupiter.api.Test;
import software.amazon.awssdk.services.s3.S3Client;

/**
 * Every failure of an S3 call surfaces as an IOException, which the task retries. Seen on the
 * stack while MinIO stopped: the SDK let an UncheckedIOException ("Unexpected end of file from
 * server") through, and the task died. The real client is also run against a server that hangs
 * up and against a port nothing listens on.
 */
class S3ObjectStoreTest {

    /** A server that accepts each connection and closes it without answering. */
    private static Thread hangUpServer(ServerSocket server) {
        Thread t = new Thread(() -> {
            while (!server.isClosed()) {
                try (Socket s = server.accept()) {
                    s.setSoLinger(true, 0); // hang up at once
                } catch (IOException e) {
                    return;
                }
            }
        });
        t.setDaemon(true);
        t.start();
        return t;
    }

    private static S3ObjectStore storeAt(int port) {
        Map<String, String> props = TestContext.baseConfig();
        props.put(S3SinkConfig.ENDPOINT, "http://127.0.0.1:" + port);
        return new S3ObjectStore(new S3SinkConfig(props));
    }

    @Test
    void aStoreThatHangsUpIsAnIOExceptionForPutAndList() throws Exception {
        try (ServerSocket server = new ServerSocket(0, 50, InetAddress.getLoopbackAddress())) {
            hangUpServer(server);
            S3ObjectStore store = storeAt(server.getLocalPort());
            try {
                IOException put = assertThrows(IOException.class,
                        () -> store.put("bronze/t/partition=0/t+0+1-1.jsonl.gz", new byte[] {1, 2, 3}, "x"));
                assertTrue(put.getMessage().startsWith("PUT s3://"), put.getMessage());
                IOException list = assertThrows(IOException.class, () -> store.listKeys("bronze/t/partition=0/"));
                assertTrue(list.getMessage().startsWith("LIST s3://"), list.getMessage());
            } finally {
                store.close();
            }
        }
    }

    /** An S3 client whose every call throws what the SDK let through on the stack. */
    private static S3Client throwingUnchecked() {
        return (S3Client) Proxy.newProxyInstance(S3Client.class.getClassLoader(), new Class<?>[] {S3Client.class},
                (proxy, method, args) -> {
                    if (method.getName().equals("close")) {
                        return null;
                    }
                    throw new UncheckedIOException(new SocketException("Unexpected end of file from server"));
                });
    }

    @Test
    void anUncheckedIOExceptionFromTheSdkIsRetriedNotFatal() {
        S3ObjectStore store = new S3ObjectStore(throwingUnchecked(), "lake");
        IOException put = assertThrows(IOException.class, () -> store.put("k", new byte[] {1}, "x"));
        assertTrue(put.getMessage().contains("Unexpected end of file from server"), put.getMessage());
        assertThrows(IOException.class, () -> store.listKeys("bronze/"));
    }

    @Test
    void aStoppedStoreIsAnIOException() throws Exception {
        int port;
        try (ServerSocket free = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            port = free.getLocalPort(); // closed again: nothing listens there
        }
        S3ObjectStore store = storeAt(port);
        try {
            assertThrows(IOException.class, () -> store.put("k", new byte[] {1}, "x"));
        } finally {
            store.close();
        }
    }
}

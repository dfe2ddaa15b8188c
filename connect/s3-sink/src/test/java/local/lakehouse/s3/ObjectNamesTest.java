package local.lakehouse.s3;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.OptionalLong;
import org.junit.jupiter.api.Test;

class ObjectNamesTest {
    @Test
    void keyWithPrefixAndGzip() {
        assertEquals("bronze/lakehouse.public.movies/partition=0/"
                        + "lakehouse.public.movies+0+00000000000000000005-00000000000000000009.jsonl.gz",
                ObjectNames.key("bronze/", "lakehouse.public.movies", 0, 5, 9, Compression.GZIP));
    }

    @Test
    void keyWithoutPrefixUncompressed() {
        assertEquals("t/partition=12/t+12+00000000000000000000-09223372036854775807.jsonl",
                ObjectNames.key("", "t", 12, 0, Long.MAX_VALUE, Compression.NONE));
    }

    @Test
    void badRangeIsRefused() {
        assertThrows(IllegalArgumentException.class, () -> ObjectNames.key("", "t", 0, 5, 4, Compression.NONE));
        assertThrows(IllegalArgumentException.class, () -> ObjectNames.key("", "t", 0, -1, 4, Compression.NONE));
    }

    @Test
    void namesSortByFirstOffset() {
        String a = ObjectNames.key("p/", "t", 0, 9, 99, Compression.GZIP);
        String b = ObjectNames.key("p/", "t", 0, 100, 100, Compression.GZIP);
        assertEquals(-1, Integer.signum(a.compareTo(b)));
    }

    @Test
    void lastOffsetParsesOnlyThisPartitionsObjects() {
        String k = ObjectNames.key("bronze/", "a.b", 1, 10, 19, Compression.GZIP);
        assertEquals(OptionalLong.of(19), ObjectNames.lastOffset(k, "bronze/", "a.b", 1));
        // written uncompressed earlier: still counts
        assertEquals(OptionalLong.of(19), ObjectNames.lastOffset(ObjectNames.key("bronze/", "a.b", 1, 10, 19,
                Compression.NONE), "bronze/", "a.b", 1));
        assertEquals(OptionalLong.empty(), ObjectNames.lastOffset(k, "bronze/", "a.b", 10));
        assertEquals(OptionalLong.empty(), ObjectNames.lastOffset(k, "bronze/", "a", 1));
        assertEquals(OptionalLong.empty(), ObjectNames.lastOffset(k, "", "a.b", 1));
        assertEquals(OptionalLong.empty(), ObjectNames.lastOffset(k + ".tmp", "bronze/", "a.b", 1));
        assertEquals(OptionalLong.empty(), ObjectNames.lastOffset(
                "bronze/a.b/partition=1/a.b+1+0000000000000000001x-00000000000000000019.jsonl", "bronze/", "a.b", 1));
    }
}

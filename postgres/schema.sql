-- Source tables shaped like MovieLens ml-latest-small, created as the application role
-- (so it owns them) on every `up` (idempotent). Column names are snake_case versions of the
-- CSV headers; the epoch-second `timestamp` columns become timestamptz.
SET search_path = {{schema}};

CREATE TABLE IF NOT EXISTS movies (
    movie_id  integer PRIMARY KEY,
    title     text    NOT NULL,
    genres    text    NOT NULL            -- pipe-separated, as in movies.csv
);

CREATE TABLE IF NOT EXISTS links (
    movie_id  integer PRIMARY KEY REFERENCES movies (movie_id) ON DELETE CASCADE,
    imdb_id   text    NOT NULL,           -- text: keeps the leading zeros of movies.csv
    tmdb_id   integer                     -- 8 movies have none
);

CREATE TABLE IF NOT EXISTS ratings (
    user_id   integer      NOT NULL,
    movie_id  integer      NOT NULL REFERENCES movies (movie_id) ON DELETE CASCADE,
    rating    numeric(2,1) NOT NULL CHECK (rating BETWEEN 0.5 AND 5.0),
    rated_at  timestamptz  NOT NULL,
    PRIMARY KEY (user_id, movie_id)
);

CREATE TABLE IF NOT EXISTS tags (
    user_id   integer     NOT NULL,
    movie_id  integer     NOT NULL REFERENCES movies (movie_id) ON DELETE CASCADE,
    tag       text        NOT NULL,
    tagged_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, movie_id, tag)
);

CREATE INDEX IF NOT EXISTS ratings_movie_id_idx ON ratings (movie_id);
CREATE INDEX IF NOT EXISTS tags_movie_id_idx ON tags (movie_id);

-- Pipeline heartbeat: Debezium's heartbeat.action.query (debezium/postgres-source.json) updates
-- this one row every heartbeat as the CDC role. The change flows through Kafka, bronze and silver
-- like any other, so the silver row's age is the pipeline's end-to-end freshness even when no
-- application table changes, and the replication slot keeps advancing on an idle source.
CREATE TABLE IF NOT EXISTS pipeline_heartbeat (
    id      smallint    PRIMARY KEY CHECK (id = 1),
    beat_at timestamptz NOT NULL
);
GRANT INSERT, UPDATE ON pipeline_heartbeat TO {{cdc_role}};

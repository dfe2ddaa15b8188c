-- Genres are pipe-separated in movies.genres; a movie counts once per genre it has.
CREATE OR REPLACE VIEW {{catalog}}.{{analytics}}.genre_popularity
COMMENT 'movies, ratings and average rating per genre'
AS
WITH movie_genres AS (
    SELECT m.movie_id, g.genre
    FROM {{catalog}}.{{silver}}.movies m
    CROSS JOIN UNNEST(split(m.genres, '|')) AS g (genre)
)
SELECT
    mg.genre,
    count(DISTINCT mg.movie_id) AS movies,
    count(r.rating) AS ratings,
    round(avg(CAST(r.rating AS double)), 3) AS avg_rating
FROM movie_genres mg
LEFT JOIN {{catalog}}.{{silver}}.ratings r ON r.movie_id = mg.movie_id
GROUP BY mg.genre

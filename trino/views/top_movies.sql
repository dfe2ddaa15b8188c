-- The 100 best-rated movies among the 1,000 most-rated ones (so a movie with a single 5-star
-- rating cannot top the list). `rank` is the order: a view's own ORDER BY is not kept by queries.
CREATE OR REPLACE VIEW {{catalog}}.{{analytics}}.top_movies
COMMENT 'the 100 best average ratings among the 1000 most-rated movies; order by rank'
AS
WITH per_movie AS (
    SELECT movie_id, count(*) AS ratings, avg(CAST(rating AS double)) AS avg_rating
    FROM {{catalog}}.{{silver}}.ratings
    GROUP BY movie_id
),
most_rated AS (
    SELECT * FROM per_movie ORDER BY ratings DESC, movie_id LIMIT 1000
),
best AS (
    SELECT * FROM most_rated ORDER BY avg_rating DESC, ratings DESC, movie_id LIMIT 100
)
SELECT
    CAST(row_number() OVER (ORDER BY b.avg_rating DESC, b.ratings DESC, b.movie_id) AS integer) AS rank,
    b.movie_id,
    m.title,
    m.genres,
    b.ratings,
    round(b.avg_rating, 3) AS avg_rating
FROM best b
JOIN {{catalog}}.{{silver}}.movies m ON m.movie_id = b.movie_id

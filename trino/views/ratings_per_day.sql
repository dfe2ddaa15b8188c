-- Ratings by the (UTC) day they were given.
CREATE OR REPLACE VIEW {{catalog}}.{{analytics}}.ratings_per_day
COMMENT 'ratings given per UTC day'
AS
SELECT
    CAST(rated_at AT TIME ZONE 'UTC' AS date) AS day,
    count(*) AS ratings,
    count(DISTINCT user_id) AS users,
    round(avg(CAST(rating AS double)), 3) AS avg_rating
FROM {{catalog}}.{{silver}}.ratings
GROUP BY 1

-- The 100 users with the most ratings; `rank` is the order.
CREATE OR REPLACE VIEW {{catalog}}.{{analytics}}.most_active_users
COMMENT 'the 100 users with the most ratings; order by rank'
AS
WITH per_user AS (
    SELECT
        user_id,
        count(*) AS ratings,
        avg(CAST(rating AS double)) AS avg_rating,
        min(rated_at) AS first_rated_at,
        max(rated_at) AS last_rated_at
    FROM {{catalog}}.{{silver}}.ratings
    GROUP BY user_id
    ORDER BY ratings DESC, user_id
    LIMIT 100
)
SELECT
    CAST(row_number() OVER (ORDER BY ratings DESC, user_id) AS integer) AS rank,
    user_id,
    ratings,
    round(avg_rating, 3) AS avg_rating,
    first_rated_at,
    last_rated_at
FROM per_user

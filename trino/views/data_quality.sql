-- Per source table, rule and hour: the rows silver's expectations checked and the ones that failed
-- (spark_streaming/expectations.yml). A view over the admin-only ops.expectation_results, so the
-- analyst (Superset) sees the counts and not the failing rows' samples.
CREATE OR REPLACE VIEW {{catalog}}.{{analytics}}.data_quality
COMMENT 'expectation results per source table, rule and hour: rows checked and failed'
AS
SELECT
    source_table,
    rule,
    action,
    date_trunc('hour', checked_at) AS hour,
    sum(passed) + sum(failed) AS checked,
    sum(failed) AS failed,
    round(CAST(sum(failed) AS double) / nullif(sum(passed) + sum(failed), 0), 6) AS failed_share
FROM {{catalog}}.{{ops}}.expectation_results
GROUP BY source_table, rule, action, date_trunc('hour', checked_at)

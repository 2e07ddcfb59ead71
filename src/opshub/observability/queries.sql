-- Samples behind the gauges; they run as the owner, across tenants, a few times a minute.

-- queue_by_priority --
-- Due tasks only: a retry waiting out its backoff is not late. Age counts from when it was due.
SELECT priority, count(*) AS depth, extract(epoch FROM now() - min(run_after)) AS oldest_age
FROM tasks
WHERE status = 'queued' AND run_after <= now()
GROUP BY priority

-- credentials_by_health --
SELECT provider, status, count(*) AS credentials FROM credentials GROUP BY provider, status

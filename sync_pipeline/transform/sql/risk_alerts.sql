-- Evaluate every alert rule (temp table _rules: rule, metric, comparison, threshold, severity) against
-- the per-account figures of $as_of (temp table _alert_inputs: account_id, metric, value).
-- An alert opens once, stays open while its rule holds (last_seen_on moves), and is resolved the
-- first evaluation date on which it no longer holds. Re-evaluating the same date changes nothing.
CREATE OR REPLACE TEMP TABLE _holding AS
SELECT i.account_id, r.rule, r.metric, r.comparison, r.threshold, r.severity, i.value
FROM _rules r JOIN _alert_inputs i ON i.metric = r.metric
WHERE i.value IS NOT NULL AND CASE r.comparison
    WHEN '>' THEN i.value > r.threshold   WHEN '>=' THEN i.value >= r.threshold
    WHEN '<' THEN i.value < r.threshold   WHEN '<=' THEN i.value <= r.threshold
    WHEN '==' THEN i.value = r.threshold  WHEN '!=' THEN i.value <> r.threshold END;

UPDATE marts.risk_alerts a
SET last_seen_on = greatest(a.last_seen_on, $as_of), value = h.value, severity = h.severity
FROM _holding h
WHERE a.status = 'open' AND a.account_id = h.account_id AND a.rule = h.rule;

UPDATE marts.risk_alerts a
SET status = 'resolved', resolved_on = $as_of
WHERE a.status = 'open' AND a.last_seen_on < $as_of
  AND a.rule IN (SELECT rule FROM _rules)
  AND NOT EXISTS (SELECT 1 FROM _holding h WHERE h.account_id = a.account_id AND h.rule = a.rule);

INSERT INTO marts.risk_alerts
SELECT md5(h.account_id || '|' || h.rule || '|' || CAST($as_of AS VARCHAR)), h.account_id, h.rule, h.metric,
       h.comparison, h.threshold, h.severity, h.value, $as_of, $as_of, NULL, 'open'
FROM _holding h
WHERE NOT EXISTS (SELECT 1 FROM marts.risk_alerts a
                  WHERE a.account_id = h.account_id AND a.rule = h.rule
                    AND (a.status = 'open' OR a.opened_on = $as_of));

-- The two-way plan of one connection and entity (DESIGN §5a): one row per link or unlinked record, with the
-- action to take. Inputs: _side_a and _side_b (load/twoway_sides.py), sync.links. Parameters: $connection,
-- $entity, $a_to_b and $b_to_a (the direction), $winner ('a' | 'b', when both sides changed), $rule_1 and $rule_2
-- (the names of the entity's match rules). A write whose source record is `blocked` (a reference not linked yet)
-- becomes the action `blocked`, with the reason, and waits for a later run.
WITH l AS (
    SELECT * FROM sync.links WHERE connection = $connection AND entity = $entity
), linked AS (
    SELECT l.our_key, l.a_id, l.b_id, l.origin, l.state, l.intent, l.a_hash, l.b_hash,
           coalesce(a.present, false) AS a_here, coalesce(b.present, false) AS b_here,
           a.hash AS a_now, b.hash AS b_now, a.fields AS a_fields, b.fields AS b_fields,
           a.blocked AS a_blocked, b.blocked AS b_blocked
    FROM l
    LEFT JOIN _side_a a ON a.id = l.a_id
    LEFT JOIN _side_b b ON b.id = l.b_id
), linked_plan AS (
    SELECT *,
           CASE WHEN a_now IS DISTINCT FROM a_hash AND b_now IS DISTINCT FROM b_hash
                THEN CASE WHEN $a_to_b AND $b_to_a THEN $winner WHEN $a_to_b THEN 'a' ELSE 'b' END END AS won
    FROM linked
), linked_actions AS (
    SELECT our_key, a_id, b_id, origin, a_fields, b_fields, a_now, b_now, a_blocked, b_blocked,
           CASE
               WHEN state = 'intended' AND intent = 'create_b' THEN CASE WHEN a_here THEN 'recover_b' ELSE 'unchanged' END
               WHEN state = 'intended' AND intent = 'create_a' THEN CASE WHEN b_here THEN 'recover_a' ELSE 'unchanged' END
               WHEN NOT a_here THEN 'deleted_a'
               WHEN NOT b_here THEN 'deleted_b'
               -- a write was sent and its answer not recorded (a crash): send it again, it is an update
               WHEN state = 'intended' THEN intent
               WHEN a_now IS NOT DISTINCT FROM a_hash AND b_now IS NOT DISTINCT FROM b_hash THEN 'unchanged'
               WHEN a_now = b_now THEN 'converge'          -- both sides hold the same content already
               WHEN won = 'a' THEN 'update_b'
               WHEN won = 'b' THEN 'update_a'
               WHEN a_now IS DISTINCT FROM a_hash THEN CASE WHEN $a_to_b THEN 'update_b' ELSE 'divergent' END
               ELSE CASE WHEN $b_to_a THEN 'update_a' ELSE 'divergent' END
           END AS action,
           CASE WHEN won IS NOT NULL AND a_now <> b_now AND state = 'synced' THEN 'both_changed' END AS conflict,
           won,
           CAST(NULL AS VARCHAR) AS detail
    FROM linked_plan
), ua AS (
    -- unlinked: in no link, and not the record a create we sent before a crash made (it carries that link's key:
    -- the create is looked up by it, it must not come back as new)
    SELECT * FROM _side_a WHERE present AND id NOT IN (SELECT a_id FROM l WHERE a_id IS NOT NULL)
      AND (ref_key IS NULL OR ref_key NOT IN (SELECT our_key FROM l WHERE state = 'intended' AND intent = 'create_a'))
), ub AS (
    SELECT * FROM _side_b WHERE present AND id NOT IN (SELECT b_id FROM l WHERE b_id IS NOT NULL)
      AND (ref_key IS NULL OR ref_key NOT IN (SELECT our_key FROM l WHERE state = 'intended' AND intent = 'create_b'))
), cand AS (
    -- the declared match rules, in order: our key in the other's external-id field, then the entity's two
    SELECT ua.id AS a_id, ub.id AS b_id, 1 AS rank, 'key' AS rule FROM ua JOIN ub
        ON ub.ref_key IN (ua.own_key, ua.alt_key) OR ua.ref_key IN (ub.own_key, ub.alt_key)
    UNION ALL
    SELECT ua.id, ub.id, 2, $rule_1 FROM ua JOIN ub ON ua.match_1 = ub.match_1
    UNION ALL
    SELECT ua.id, ub.id, 3, $rule_2 FROM ua JOIN ub ON ua.match_2 = ub.match_2
), best_a AS (
    SELECT c.* FROM cand c WHERE c.rank = (SELECT min(rank) FROM cand x WHERE x.a_id = c.a_id)
), best_b AS (
    SELECT c.* FROM cand c WHERE c.rank = (SELECT min(rank) FROM cand x WHERE x.b_id = c.b_id)
), pairs AS (
    -- paired only when each is the other's one candidate under the first rule that finds any
    SELECT DISTINCT x.a_id, x.b_id, x.rule FROM best_a x JOIN best_b y USING (a_id, b_id, rank)
    WHERE (SELECT count(DISTINCT b_id) FROM best_a z WHERE z.a_id = x.a_id) = 1
      AND (SELECT count(DISTINCT a_id) FROM best_b z WHERE z.b_id = x.b_id) = 1
), paired_actions AS (
    SELECT a.own_key AS our_key, p.a_id, p.b_id, 'matched' AS origin, a.fields AS a_fields, b.fields AS b_fields,
           a.hash AS a_now, b.hash AS b_now, a.blocked AS a_blocked, b.blocked AS b_blocked, w.won,
           CASE WHEN a.hash = b.hash THEN 'link' WHEN w.won = 'a' THEN 'update_b' ELSE 'update_a' END AS action,
           CASE WHEN a.hash <> b.hash THEN 'first_pairing' END AS conflict,
           'paired by ' || p.rule AS detail
    FROM pairs p
    JOIN ua a ON a.id = p.a_id
    JOIN ub b ON b.id = p.b_id
    CROSS JOIN (SELECT CASE WHEN $a_to_b AND $b_to_a THEN $winner WHEN $a_to_b THEN 'a' ELSE 'b' END AS won) w
), ambiguous AS (
    SELECT a.own_key AS our_key, a.id AS a_id, NULL AS b_id, NULL AS origin, a.fields AS a_fields, NULL AS b_fields,
           a.hash AS a_now, NULL AS b_now, a.blocked AS a_blocked, NULL AS b_blocked, NULL AS won, 'ambiguous' AS action, NULL AS conflict,
           'candidates on the other side by ' || min(c.rule) || ': ' || string_agg(DISTINCT c.b_id, ', ') AS detail
    FROM ua a JOIN best_a c ON c.a_id = a.id
    WHERE a.id NOT IN (SELECT a_id FROM pairs)
    GROUP BY ALL
    UNION ALL
    SELECT b.own_key, NULL, b.id, NULL, NULL, b.fields, NULL, b.hash, NULL, b.blocked, NULL, 'ambiguous', NULL,
           'candidates on the other side by ' || min(c.rule) || ': ' || string_agg(DISTINCT c.a_id, ', ')
    FROM ub b JOIN best_b c ON c.b_id = b.id
    WHERE b.id NOT IN (SELECT b_id FROM pairs)
    GROUP BY ALL
), new_actions AS (
    SELECT own_key AS our_key, id AS a_id, NULL AS b_id, 'a' AS origin, fields AS a_fields, NULL AS b_fields,
           hash AS a_now, NULL AS b_now, blocked AS a_blocked, NULL AS b_blocked, 'a' AS won,
           CASE WHEN $a_to_b THEN 'create_b' ELSE 'divergent' END AS action, NULL AS conflict,
           CASE WHEN NOT $a_to_b THEN 'only on side a; the direction does not create it on side b' END AS detail
    FROM ua WHERE id NOT IN (SELECT a_id FROM cand)
    UNION ALL
    SELECT own_key, NULL, id, 'b', NULL, fields, NULL, hash, NULL, blocked, 'b',
           CASE WHEN $b_to_a THEN 'create_a' ELSE 'divergent' END, NULL,
           CASE WHEN NOT $b_to_a THEN 'only on side b; the direction does not create it on side a' END
    FROM ub WHERE id NOT IN (SELECT b_id FROM cand)
)
SELECT our_key, a_id, b_id, origin,
       CASE WHEN action IN ('create_b', 'recover_b', 'update_b') AND a_blocked IS NOT NULL THEN 'blocked'
            WHEN action IN ('create_a', 'recover_a', 'update_a') AND b_blocked IS NOT NULL THEN 'blocked'
            ELSE action END AS action,
       conflict, won,
       CASE WHEN action IN ('create_b', 'recover_b', 'update_b') AND a_blocked IS NOT NULL THEN a_blocked
            WHEN action IN ('create_a', 'recover_a', 'update_a') AND b_blocked IS NOT NULL THEN b_blocked
            ELSE detail END AS detail,
       a_fields, b_fields, a_now, b_now
FROM (
    SELECT our_key, a_id, b_id, origin, action, conflict, won, detail, a_fields, b_fields, a_now, b_now, a_blocked,
           b_blocked FROM linked_actions
    UNION ALL BY NAME SELECT * FROM paired_actions
    UNION ALL BY NAME SELECT * FROM ambiguous
    UNION ALL BY NAME SELECT * FROM new_actions
)

-- Forecasting, part 4: farm utilisation for the next hours, per label
-- (docs/forecasting.md, "Resource forecast").

-- Per label ('*' = the whole farm) and hour: the slot-seconds demanded by
-- the work queued and running now (each unfinished task's forecast
-- centre; a running one's remaining part), spilled forward hour by hour
-- at the label's capacity, plus the work recurring in that hour of the
-- week (mean of the last 4 weeks); utilisation against the slots of the
-- online agents with the label, the queue wait it implies, and which label
-- runs out first.
CREATE OR REPLACE FUNCTION railyard.utilization_forecast(p_hours int DEFAULT 4)
RETURNS TABLE (label text, hour_start timestamptz, capacity_slots int, demand_slot_s float8,
               utilization float8, queue_wait_s float8, runs_out_first boolean)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
DECLARE
    l       record;
    carry   float8;
    cap     float8;
    dem     float8;
    first_h int;
    best    text;
    best_h  int := 2147483647;
    best_u  float8 := 0;
    a_label text[] := '{}';
    a_hour  timestamptz[] := '{}';
    a_cap   int[] := '{}';
    a_dem   float8[] := '{}';
    a_util  float8[] := '{}';
    a_wait  float8[] := '{}';
BEGIN
    IF p_hours NOT BETWEEN 1 AND 168 THEN
        RAISE EXCEPTION 'utilization_forecast: hours must be 1-168, not %', p_hours
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR l IN
        WITH online AS (
            SELECT slots, labels FROM railyard.agents WHERE state = 'online' AND lease_until > now()
        ), labels AS (
            SELECT '*' AS label, coalesce(sum(slots), 0)::int AS slots FROM online
            UNION ALL
            SELECT x, sum(slots)::int FROM online, unnest(labels) x GROUP BY x
        ), backlog AS (
            SELECT t.requires,
                   CASE WHEN t.state = 'running'
                        THEN greatest(coalesce(exp(s.ewma_log + s.mix_offset), 60)
                                      - extract(epoch FROM now() - coalesce(t.started_at, t.claimed_at)),
                                      0.1 * coalesce(exp(s.ewma_log + s.mix_offset), 60))
                        ELSE coalesce(exp(s.ewma_log + s.mix_offset), t.estimate_s, 60) END AS work
              FROM railyard.tasks t
              JOIN railyard.pipelines p ON p.id = t.pipeline_id
              LEFT JOIN railyard.duration_stats s
                     ON s.family = railyard.pipeline_family(p.name, p.family)
                    AND s.task = coalesce(t.forecast_key, t.name) AND s.version = t.version
                    AND s.agent_class = '*'
             WHERE t.state IN ('blocked', 'ready', 'running')
        )
        SELECT lb.label, lb.slots,
               coalesce((SELECT sum(b.work) FROM backlog b
                          WHERE lb.label = '*' OR lb.label = ANY (b.requires)), 0) AS now_work
          FROM labels lb
    LOOP
        carry := l.now_work;
        first_h := NULL;
        cap := greatest(l.slots, 0) * 3600.0;
        FOR h IN 0..p_hours - 1 LOOP
            -- recurring: the same hour of the week, last 4 weeks
            SELECT coalesce(sum(r.duration_s), 0) / 4 INTO dem
              FROM railyard.run_history r
              LEFT JOIN railyard.tasks t ON t.id = r.task_id
             WHERE r.started_at >= date_trunc('hour', now()) + make_interval(hours => h) - interval '28 days'
               AND extract(isodow FROM r.started_at) = extract(isodow FROM now() + make_interval(hours => h))
               AND extract(hour FROM r.started_at) = extract(hour FROM now() + make_interval(hours => h))
               AND (l.label = '*' OR l.label = ANY (t.requires));
            dem := dem + carry;
            a_label := a_label || l.label;
            a_hour := a_hour || (date_trunc('hour', now()) + make_interval(hours => h));
            a_cap := a_cap || l.slots;
            a_dem := a_dem || dem;
            a_util := a_util || CASE WHEN cap > 0 THEN dem / cap END;
            a_wait := a_wait || CASE WHEN cap > 0 THEN greatest(dem - cap, 0) / l.slots END;
            IF cap > 0 AND dem >= cap AND first_h IS NULL THEN
                first_h := h;
            END IF;
            carry := greatest(dem - cap, 0);
        END LOOP;
        IF first_h IS NOT NULL AND (first_h < best_h OR (first_h = best_h AND l.now_work / cap > best_u)) THEN
            best := l.label;
            best_h := first_h;
            best_u := l.now_work / cap;
        END IF;
    END LOOP;
    RETURN QUERY SELECT u.label, u.hour_start, u.capacity_slots, u.demand_slot_s, u.utilization,
                        u.queue_wait_s, u.label IS NOT DISTINCT FROM best AND best IS NOT NULL
                   FROM unnest(a_label, a_hour, a_cap, a_dem, a_util, a_wait)
                        AS u(label, hour_start, capacity_slots, demand_slot_s, utilization, queue_wait_s)
                  ORDER BY u.label = '*' DESC, u.label, u.hour_start;
END $$;
COMMENT ON FUNCTION railyard.utilization_forecast(int) IS
    'per label (* = farm) and hour: forecast slot-seconds demanded, utilisation, implied queue wait, and the label that runs out first';

-- Stores the forecast for the next hours so that it can be judged.
CREATE OR REPLACE FUNCTION railyard.record_utilization_forecast(p_hours int DEFAULT 4)
RETURNS int LANGUAGE sql AS $$
    WITH ins AS (
        INSERT INTO railyard.utilization_forecasts
            (label, hour_start, capacity_slots, demand_slot_s, utilization, queue_wait_s)
        SELECT label, hour_start, capacity_slots, demand_slot_s, coalesce(utilization, 0),
               coalesce(queue_wait_s, 0)
          FROM railyard.utilization_forecast(p_hours)
        RETURNING 1)
    SELECT count(*)::int FROM ins
$$;
COMMENT ON FUNCTION railyard.record_utilization_forecast(int) IS
    'stores railyard.utilization_forecast(hours) in utilization_forecasts; returns the rows stored';

-- Recorded utilisation forecasts of hours that are over, against the
-- slot-seconds the history shows in that hour (the latest forecast made
-- before the hour began).
CREATE OR REPLACE VIEW railyard.utilization_accuracy AS
WITH f AS (
    SELECT DISTINCT ON (label, hour_start) *
      FROM railyard.utilization_forecasts
     WHERE hour_start + interval '1 hour' <= now() AND made_at <= hour_start + interval '1 hour'
     ORDER BY label, hour_start, made_at DESC
)
SELECT f.label, f.hour_start, f.made_at, f.demand_slot_s AS forecast_slot_s,
       coalesce(a.busy, 0) AS actual_slot_s,
       round((100 * abs(f.demand_slot_s - coalesce(a.busy, 0)) / nullif(coalesce(a.busy, 0), 0))::numeric, 1)
           AS abs_pct_error
  FROM f
  LEFT JOIN LATERAL (
        SELECT sum(extract(epoch FROM least(r.finished_at, f.hour_start + interval '1 hour')
                                      - greatest(r.started_at, f.hour_start))) AS busy
          FROM railyard.run_history r LEFT JOIN railyard.tasks t ON t.id = r.task_id
         WHERE r.finished_at > f.hour_start AND r.started_at < f.hour_start + interval '1 hour'
           AND (f.label = '*' OR f.label = ANY (t.requires))) a ON true;
COMMENT ON VIEW railyard.utilization_accuracy IS
    'recorded utilisation forecasts of past hours against the busy slot-seconds the run history shows';

-- Drift monitoring counts, shared by every replica: each process stores its own
-- counts of each window under its own writer id, and a window's population is the sum over its
-- writers, so processes never overwrite (or double) each other's counts and a restart loses
-- nothing. `counts` is JSON in the service's format; windows are unix seconds, [start, end).
-- `seq` orders one writer's copies: a lower one never replaces a higher one.
CREATE TABLE drift_counts (
    model        TEXT COLLATE "C" NOT NULL,
    version      BIGINT  NOT NULL,
    window_start BIGINT  NOT NULL,
    window_end   BIGINT  NOT NULL,
    writer       TEXT COLLATE "C" NOT NULL,
    seq          BIGINT  NOT NULL,
    rows_counted BIGINT  NOT NULL,
    counts       TEXT    NOT NULL,
    updated_at   TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (model, version, window_start, writer)
);

CREATE INDEX drift_counts_by_end ON drift_counts (model, version, window_end);

-- The closed windows whose alerts were raised: one row per window, inserted by the one process
-- that judged it.
CREATE TABLE drift_claims (
    model        TEXT COLLATE "C" NOT NULL,
    version      BIGINT  NOT NULL,
    window_start BIGINT  NOT NULL,
    claimed_by   TEXT    NOT NULL,
    claimed_at   TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (model, version, window_start)
);

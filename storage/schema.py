"""The store's tables and views, with a version number.

Changing the layout means: bump SCHEMA_VERSION, add the DDL here, and add a step to
`storage.migrations.MIGRATIONS` that brings a store of the previous version up to date.
The views are the documented interface users query (README, "The store"); keep their
columns stable.
"""

from __future__ import annotations

from storage.vocabulary import PARADIGMS, SOURCES, STAGES, STORED_META_TASKS, sql_choices

# 2: `models` keyed by (model, variant); 3: `intervals`; 4: source and paradigm `baseline`;
# 5: runs.source admits imported 'mteb' / 'vlm2vec'; 6: paradigm 'dual-encoder', meta-task 'text';
# 7: embeddings in float16 files beside the store (storage/vectors.py), items.thumbnail_md5 and a
# dataset_items table kept when rows land (app start read them from every row before)
SCHEMA_VERSION = 7

# 95% intervals of every score (version 3). Written by `pipeline.stats` when a run lands and by
# `vlmembed stats`; a dataset's row has scope 'dataset', an average's scope 'average' (name = meta-task).
INTERVALS_TABLE = """
CREATE TABLE IF NOT EXISTS intervals (
    run_id VARCHAR NOT NULL,
    scope VARCHAR NOT NULL CHECK (scope IN ('dataset', 'average')),
    name VARCHAR NOT NULL,                -- the dataset, or the meta-task of an average
    split VARCHAR NOT NULL CHECK (split IN ('all', 'in_domain', 'ood')),  -- 'all' for a dataset
    metric VARCHAR NOT NULL,
    value DOUBLE NOT NULL,                -- the point estimate (the stored score, or the mean of them)
    lower DOUBLE NOT NULL,
    upper DOUBLE NOT NULL,
    level DOUBLE NOT NULL,                -- 0.95
    method VARCHAR NOT NULL,              -- 'bootstrap' (per-query ranks) or 'wilson-n' / 'normal-n' (from n)
    n_queries INTEGER,                    -- queries behind the score (summed over an average's datasets)
    n_datasets INTEGER NOT NULL,
    n_resamples INTEGER,                  -- bootstrap only
    seed INTEGER,                         -- bootstrap only
    PRIMARY KEY (run_id, scope, name, split, metric)
);
"""

INTERVAL_COLUMNS = ("run_id", "scope", "name", "split", "metric", "value", "lower", "upper", "level", "method",
                    "n_queries", "n_datasets", "n_resamples", "seed")

TABLES = f"""
CREATE TABLE IF NOT EXISTS meta (
    key VARCHAR PRIMARY KEY,
    value VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS models (
    model VARCHAR NOT NULL,               -- 'LLaVA-1.6' (paper) or e.g. 'llava_next-tiny' (demo)
    variant VARCHAR NOT NULL DEFAULT 'default',  -- a record per variant: an ablation's settings differ
    family VARCHAR,                       -- registry name in pipeline.models, when there is one
    display_name VARCHAR NOT NULL,
    paradigm VARCHAR NOT NULL CHECK (paradigm IN ({sql_choices(PARADIGMS)})),
    attention VARCHAR,
    pooling VARCHAR,
    vision_encoder VARCHAR,
    vision_update VARCHAR,
    backbone VARCHAR,
    params BIGINT,
    scale VARCHAR NOT NULL,               -- 'published' (7-8B checkpoints) or 'tiny' (demo presets)
    description VARCHAR,
    PRIMARY KEY (model, variant)          -- runs join on both: JOIN models USING (model, variant)
);

CREATE TABLE IF NOT EXISTS datasets (
    dataset VARCHAR PRIMARY KEY,
    benchmark VARCHAR NOT NULL,           -- 'MMEB' or 'builtin'
    meta_task VARCHAR NOT NULL CHECK (meta_task IN ({sql_choices(STORED_META_TASKS)})),
    query_modality VARCHAR,
    target_modality VARCHAR,
    in_domain BOOLEAN NOT NULL,
    n_train INTEGER,
    n_eval INTEGER,
    n_candidates INTEGER,
    instruction VARCHAR,
    description VARCHAR
);

CREATE TABLE IF NOT EXISTS runs (
    run_id VARCHAR PRIMARY KEY,
    source VARCHAR NOT NULL CHECK (source IN ({sql_choices(SOURCES)})),
    model VARCHAR NOT NULL,
    label VARCHAR NOT NULL,               -- human-readable, e.g. 'Table 1' or 'final'
    variant VARCHAR NOT NULL DEFAULT 'default',  -- ablations: 'vision-unfrozen', 'bidirectional' ...
    experiment VARCHAR,
    train_task VARCHAR,                   -- meta-task trained on, NULL for zero-shot
    stage VARCHAR NOT NULL DEFAULT 'final',  -- {', '.join(STAGES)}
    train_samples BIGINT,
    status VARCHAR NOT NULL DEFAULT 'complete',
    config JSON,
    config_hash VARCHAR,
    code_version VARCHAR,
    checkpoint VARCHAR,
    started_at TIMESTAMP,
    finished_at TIMESTAMP,
    timings JSON,
    notes VARCHAR
);

CREATE TABLE IF NOT EXISTS scores (
    run_id VARCHAR NOT NULL,
    dataset VARCHAR NOT NULL,
    metric VARCHAR NOT NULL,              -- 'precision@1', 'recall@5', 'mrr', 'ndcg@5'
    value DOUBLE NOT NULL,                -- percent for precision/recall, 0-100 for mrr/ndcg too
    n_queries INTEGER,
    PRIMARY KEY (run_id, dataset, metric)
);

CREATE TABLE IF NOT EXISTS reported_averages (
    run_id VARCHAR NOT NULL,
    meta_task VARCHAR NOT NULL,
    split VARCHAR NOT NULL,               -- 'all', 'in_domain', 'ood'
    metric VARCHAR NOT NULL,
    value DOUBLE NOT NULL,
    where_printed VARCHAR,
    PRIMARY KEY (run_id, meta_task, split, metric)
);

CREATE TABLE IF NOT EXISTS items (
    item_id VARCHAR PRIMARY KEY,          -- content hash of instruction, text and image
    modality VARCHAR NOT NULL,            -- 'image', 'text', 'image+text'
    instruction VARCHAR,
    text VARCHAR,
    image_path VARCHAR,
    thumbnail BLOB,                       -- small PNG for the dashboard
    thumbnail_md5 VARCHAR                 -- md5(thumbnail), kept so app start need not hash every thumbnail
);

CREATE TABLE IF NOT EXISTS dataset_rows (
    dataset VARCHAR NOT NULL,
    row_idx INTEGER NOT NULL,
    query_item VARCHAR NOT NULL,
    candidates VARCHAR[] NOT NULL,        -- item ids, gold first
    PRIMARY KEY (dataset, row_idx)
);

-- A run's embeddings are one float16 matrix file, <store>.vectors/<file> (storage/vectors.py);
-- the `embeddings` view and the embedding_vector / embedding_cosine functions read it.
CREATE TABLE IF NOT EXISTS embedding_files (
    run_id VARCHAR PRIMARY KEY,
    file VARCHAR NOT NULL,                -- name under <store>.vectors/, never reused
    origin VARCHAR,                       -- absolute path it was written at (a copied store file still finds it)
    dim INTEGER NOT NULL,
    n_items BIGINT NOT NULL,
    dtype VARCHAR NOT NULL                -- 'float16'
);

CREATE TABLE IF NOT EXISTS embedding_rows (
    run_id VARCHAR NOT NULL,
    item_id VARCHAR NOT NULL,
    dim INTEGER NOT NULL,
    "row" INTEGER NOT NULL                -- row of the run's matrix file
);

-- Each dataset's distinct queries and candidates, rewritten with its rows: unnesting every
-- candidate list at app start took 0.65 s on a quarter-grid store (25.5M ids)
CREATE TABLE IF NOT EXISTS dataset_items (
    dataset VARCHAR NOT NULL,
    item_id VARCHAR NOT NULL,
    role VARCHAR NOT NULL                 -- 'query' or 'target'
);

CREATE TABLE IF NOT EXISTS ranks (
    run_id VARCHAR NOT NULL,
    dataset VARCHAR NOT NULL,
    row_idx INTEGER NOT NULL,
    gold_rank INTEGER NOT NULL,           -- 1 = the gold candidate ranked first
    top_item VARCHAR,
    gold_score DOUBLE,
    top_score DOUBLE,
    PRIMARY KEY (run_id, dataset, row_idx)
);

CREATE TABLE IF NOT EXISTS train_log (
    run_id VARCHAR NOT NULL,
    step INTEGER NOT NULL,
    samples BIGINT NOT NULL,
    loss DOUBLE,
    lr DOUBLE,
    PRIMARY KEY (run_id, step)
);

CREATE TABLE IF NOT EXISTS projections (
    run_id VARCHAR NOT NULL,
    dataset VARCHAR NOT NULL,
    method VARCHAR NOT NULL,              -- 'umap', 'tsne', 'pca'
    item_id VARCHAR NOT NULL,
    role VARCHAR NOT NULL,
    x DOUBLE NOT NULL,
    y DOUBLE NOT NULL,
    PRIMARY KEY (run_id, dataset, method, item_id, role)
);

CREATE TABLE IF NOT EXISTS alignment (
    run_id VARCHAR NOT NULL,
    dataset VARCHAR NOT NULL,
    metric VARCHAR NOT NULL,
    value DOUBLE NOT NULL,
    PRIMARY KEY (run_id, dataset, metric)
);
""" + "\n" + INTERVALS_TABLE

VIEWS = """
CREATE OR REPLACE VIEW embeddings AS  -- vec: L2-normalised, stored as float16, read as FLOAT[]
    SELECT run_id, item_id, dim, embedding_vector(run_id, "row") AS vec FROM embedding_rows;

CREATE OR REPLACE VIEW v_scores AS
    SELECT r.source, r.run_id, r.model, m.paradigm, d.meta_task, s.dataset, d.in_domain,
           s.metric, s.value,
           r.variant, r.stage, r.train_samples, r.label, d.benchmark, m.scale
    FROM scores s
    JOIN runs r USING (run_id)
    JOIN models m ON m.model = r.model AND m.variant = r.variant
    JOIN datasets d ON d.dataset = s.dataset
    WHERE r.status = 'complete';

CREATE OR REPLACE VIEW v_embeddings AS
    SELECT e.run_id, r.model, di.dataset, e.item_id, di.role, i.modality, i.text, e.vec
    FROM embeddings e
    JOIN runs r USING (run_id)
    JOIN dataset_items di ON di.item_id = e.item_id
    JOIN items i ON i.item_id = e.item_id
    WHERE r.status = 'complete';

CREATE OR REPLACE VIEW v_meta_task_averages AS
    SELECT source, run_id, model, paradigm, meta_task, metric, variant, stage, train_samples, benchmark,
           avg(value) AS value,
           avg(value) FILTER (WHERE in_domain) AS in_domain,
           avg(value) FILTER (WHERE NOT in_domain) AS ood,
           count(*) AS n_datasets
    FROM v_scores
    GROUP BY ALL;

CREATE OR REPLACE VIEW v_intervals AS
    SELECT r.source, i.run_id, r.model, m.paradigm, i.scope,
           coalesce(d.meta_task, i.name) AS meta_task,
           CASE WHEN i.scope = 'dataset' THEN i.name END AS dataset,
           CASE WHEN i.scope = 'dataset' THEN CASE WHEN d.in_domain THEN 'in_domain' ELSE 'ood' END
                ELSE i.split END AS split,
           i.metric, i.value, i.lower, i.upper, i.level, i.method, i.n_queries, i.n_datasets,
           i.n_resamples, i.seed, r.variant, r.stage, r.train_samples, r.label
    FROM intervals i
    JOIN runs r USING (run_id)
    JOIN models m ON m.model = r.model AND m.variant = r.variant
    LEFT JOIN datasets d ON i.scope = 'dataset' AND d.dataset = i.name
    WHERE r.status = 'complete';
"""

# What dataset_items holds for the datasets in `wanted` (a relation with a `dataset` column).
DATASET_ITEMS_OF = """
    SELECT DISTINCT dataset, query_item AS item_id, 'query' AS role FROM dataset_rows WHERE dataset IN ({wanted})
    UNION
    SELECT DISTINCT dataset, unnest(candidates) AS item_id, 'target' AS role FROM dataset_rows
    WHERE dataset IN ({wanted})
"""

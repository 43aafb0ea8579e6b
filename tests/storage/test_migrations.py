"""Old stores are migrated by writers in a transaction, or refused with a clear message."""

from __future__ import annotations

import duckdb
import pytest

from storage import SCHEMA_VERSION, StoreSchemaError, StoreWriter
from storage.migrations import ensure_current, stored_version


def test_new_store_gets_current_version(tmp_path):
    path = tmp_path / "s.duckdb"
    StoreWriter(path).publish()
    con = duckdb.connect(str(path), read_only=True)
    assert stored_version(con) == SCHEMA_VERSION


def test_migration_steps_run_in_order_and_bump_version(paper_store):
    con = duckdb.connect(str(paper_store))
    steps = {
        SCHEMA_VERSION: lambda c: c.execute("ALTER TABLE runs ADD COLUMN gpu_hours DOUBLE"),
        SCHEMA_VERSION + 1: lambda c: c.execute("UPDATE runs SET gpu_hours = 1.5"),
    }
    found = ensure_current(con, "test", steps, target=SCHEMA_VERSION + 2)
    assert found == SCHEMA_VERSION
    assert stored_version(con) == SCHEMA_VERSION + 2
    assert con.execute("SELECT DISTINCT gpu_hours FROM runs").fetchall() == [(1.5,)]


def test_failed_migration_rolls_back(paper_store):
    con = duckdb.connect(str(paper_store))

    def broken(c):
        c.execute("ALTER TABLE runs ADD COLUMN half_done INT")
        raise RuntimeError("migration bug")

    with pytest.raises(RuntimeError):
        ensure_current(con, "test", {SCHEMA_VERSION: broken}, target=SCHEMA_VERSION + 1)
    assert stored_version(con) == SCHEMA_VERSION
    cols = {r[0] for r in con.execute("DESCRIBE runs").fetchall()}
    assert "half_done" not in cols


def test_version_without_migration_path_is_refused(paper_store):
    con = duckdb.connect(str(paper_store))
    con.execute("UPDATE meta SET value = '0' WHERE key = 'schema_version'")
    con.close()
    with pytest.raises(StoreSchemaError, match="no migration from version 0"):
        StoreWriter(paper_store)


# The version-1 `models` table: one record per model name.
_MODELS_V1 = """
CREATE TABLE models_v1 (
    model VARCHAR PRIMARY KEY, family VARCHAR, display_name VARCHAR NOT NULL,
    paradigm VARCHAR NOT NULL CHECK (paradigm IN ('autoregressive', 'diffusion')),
    attention VARCHAR, pooling VARCHAR, vision_encoder VARCHAR, vision_update VARCHAR, backbone VARCHAR,
    params BIGINT, scale VARCHAR NOT NULL, description VARCHAR)
"""


def _as_version_1(path, mmada_vision_update: str | None = None) -> dict[str, int]:
    """Rewrite a current store into the version-1 layout (the last-written MMaDA record wins);
    returns every table's row count."""
    from storage.schema import VIEWS
    from storage.vectors import ensure_functions, vectors_dir

    con = duckdb.connect(str(path))
    ensure_functions(con, vectors_dir(path))  # the `embeddings` view names them
    con.execute(_MODELS_V1)
    con.execute("INSERT INTO models_v1 SELECT * EXCLUDE (variant) FROM models WHERE variant = 'default'")
    if mmada_vision_update is not None:
        con.execute("UPDATE models_v1 SET vision_update = ? WHERE model = 'MMaDA'", [mmada_vision_update])
    con.execute("DROP TABLE models")
    con.execute("ALTER TABLE models_v1 RENAME TO models")
    con.execute(VIEWS.replace("m.model = r.model AND m.variant = r.variant", "m.model = r.model")
                .replace("USING (model, variant)", "USING (model)"))
    con.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    tables = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables "
                                        "WHERE table_type = 'BASE TABLE'").fetchall()]
    counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in tables}
    counts["embeddings"] = counts["embedding_rows"]  # a view over embedding_rows since version 7
    con.close()
    return counts


def _pipeline_mmada_runs(path) -> None:
    """What `vlmembed run experiments/paper.toml` lands for MMaDA on VQA: the main run and Table 4's."""
    from storage import ModelRecord, RunRecord, ScoreRecord
    from storage.records import VISION_FROZEN, VISION_TRAINED

    with StoreWriter(path) as w:
        for variant, trained in (("default", False), ("vision-unfrozen", True)):
            w.upsert_models([ModelRecord("MMaDA", "MMaDA", "diffusion", "published", family="mmada", variant=variant,
                                         vision_update=VISION_TRAINED if trained else VISION_FROZEN)])
            w.add_run(RunRecord(run_id=f"pipeline:paper:MMaDA:vqa:{variant}:final", source="pipeline", model="MMaDA",
                                label="vqa final", variant=variant, train_task="vqa",
                                config={"model": {"name": "MMaDA", "variant": variant, "train_vision": trained}},
                                scores=[ScoreRecord("OK-VQA", "precision@1", 40.0 + trained, 1000)]))


@pytest.mark.parametrize("with_pipeline_runs", [False, True])
def test_version_1_store_migrates_to_a_record_per_variant_without_losing_rows(paper_store, with_pipeline_runs):
    from storage import StoreReader
    from storage.records import VISION_FROZEN, VISION_TRAINED

    if with_pipeline_runs:
        _pipeline_mmada_runs(paper_store)
    before = _as_version_1(paper_store, VISION_TRAINED if with_pipeline_runs else None)
    with pytest.raises(StoreSchemaError, match="vlmembed migrate"):
        StoreReader(paper_store)
    with StoreWriter(paper_store):  # what `vlmembed migrate` does
        pass
    reader = StoreReader(paper_store)
    after = reader.summary() | {t: len(reader._frame(f"SELECT 1 FROM {t}"))
                                for t in ("reported_averages", "dataset_rows", "ranks", "train_log")}
    assert {t: n for t, n in after.items() if t != "models"} == {t: before[t] for t in after if t != "models"}
    assert after["models"] == before["models"] + 1  # MMaDA's vision-unfrozen record
    mmada = reader.models().query("model == 'MMaDA'").set_index("variant")["vision_update"].to_dict()
    if with_pipeline_runs:  # both records rebuilt from what each variant's runs recorded
        assert mmada == {"default": VISION_FROZEN, "vision-unfrozen": VISION_TRAINED}
    else:  # the paper's own records: Table 6 for the main runs, Table 4 for the ablation
        assert mmada["default"] == "Vision encoder frozen."
        assert "trainable during contrastive fine-tuning" in mmada["vision-unfrozen"]
    assert len(reader._frame("SELECT * FROM v_scores")) == before["scores"]  # each score joins one record
    assert set(reader.runs()["run_id"]) == set(reader._frame("SELECT run_id FROM runs")["run_id"])
    reader.close()


def test_version_5_store_admits_dual_encoders_and_text_datasets_after_migration(paper_store):
    """5 -> 6 widens two CHECKs: a version-5 store refuses the new words, the migrated one keeps its rows
    and takes them."""
    from storage import ModelRecord, StoreReader

    con = duckdb.connect(str(paper_store))
    for table, column, old in (("models", "paradigm", "'autoregressive', 'diffusion', 'baseline'"),
                               ("datasets", "meta_task", "'classification', 'vqa', 'retrieval'")):
        ddl = con.execute("SELECT sql FROM duckdb_tables() WHERE table_name = ?", [table]).fetchall()[0][0]
        widened = ddl.split(f"CHECK(({column} IN (")[1].split(")")[0]
        con.execute(ddl.replace(f"CREATE TABLE {table}(", f"CREATE TABLE {table}_v5(", 1).replace(widened, old))
        con.execute(f"INSERT INTO {table}_v5 SELECT * FROM {table}")
        con.execute(f"DROP TABLE {table}")
        con.execute(f"ALTER TABLE {table}_v5 RENAME TO {table}")
    con.execute("UPDATE meta SET value = '5' WHERE key = 'schema_version'")
    with pytest.raises(duckdb.ConstraintException):
        con.execute("INSERT INTO models (model, display_name, paradigm, scale) VALUES ('x', 'x', 'dual-encoder', 'tiny')")
    before = {t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in ("models", "datasets")}
    con.close()

    with StoreWriter(paper_store) as w:  # what `vlmembed migrate` does
        w.upsert_models([ModelRecord("clip-tiny", "CLIP (tiny)", "dual-encoder", "tiny")])
    reader = StoreReader(paper_store)
    assert len(reader.models()) == before["models"] + 1
    assert len(reader.datasets()) == before["datasets"]
    assert reader.models().set_index("model").loc["clip-tiny", "paradigm"] == "dual-encoder"
    reader.close()

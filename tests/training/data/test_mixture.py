"""The staged mixture: config validation, stage schedule, weights honoured, determinism and resume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from training.data.mixture import MixtureSampler, load_mixture, mixture_from_dict
from training.data.shards import ShardWriter, open_stream, read_manifest, token_dtype
from training.errors import ConfigError

REPO = Path(__file__).resolve().parents[3]


def _write_source(directory: Path, base: int, tokens: int = 5000, shard_tokens: int = 1500) -> Path:
    """A shard directory whose every token id lies in [base, base + 100), so a row reveals its source."""
    writer = ShardWriter(directory, vocab_size=1000, shard_tokens=shard_tokens)
    writer.write(base + np.arange(tokens) % 100)
    writer.close({})
    return directory


def _table(**stage_overrides) -> dict:
    stages = [
        {"name": "broad", "fraction": 0.5, "seq_len": 8, "weights": {"a": 1.0}},
        {"name": "focus", "fraction": 0.5, "seq_len": 16, "weights": {"a": 0.25, "b": 0.75}},
    ]
    stages[1].update(stage_overrides)
    return {"sources": {"a": "a", "b": "b"}, "stages": stages}


@pytest.fixture
def mixture(tmp_path):
    _write_source(tmp_path / "a", base=0)
    _write_source(tmp_path / "b", base=500)
    return mixture_from_dict(_table(), tmp_path)


def test_stream_reads_across_shards_and_wraps(tmp_path):
    stream = open_stream(_write_source(tmp_path / "s", base=0, tokens=250, shard_tokens=100))
    assert stream.size == 250 and len(stream.parts) == 3
    assert stream.window(95, 10).tolist() == [(95 + i) % 100 for i in range(10)]
    assert stream.window(245, 10).tolist() == [45, 46, 47, 48, 49, 0, 1, 2, 3, 4]


def test_large_vocabularies_get_uint32_shards(tmp_path):
    assert token_dtype(65_535) == np.uint16 and token_dtype(65_536) == np.uint32
    writer = ShardWriter(tmp_path / "big", vocab_size=151_000, shard_tokens=4)
    writer.write([150_999, 70_000, 1, 2, 3])
    writer.close({})
    assert read_manifest(tmp_path / "big")["dtype"] == "uint32"
    assert open_stream(tmp_path / "big").window(0, 5).tolist() == [150_999, 70_000, 1, 2, 3]


def test_schedule_switches_stage_and_sequence_length(mixture):
    sampler = MixtureSampler(mixture, batch_size=4, total_tokens=320, seed=0)
    assert sampler.stage_at(0).name == "broad"
    assert sampler.stage_at(159).name == "broad"
    assert sampler.stage_at(160).name == "focus"
    assert sampler.stage_at(10_000).name == "focus"  # past the end the last stage continues
    shapes = [sampler.next_batch()[1].shape for _ in range(6)]
    assert shapes[:5] == [(4, 9)] * 5  # 5 batches x 32 tokens reach the boundary at 160
    assert shapes[5] == (4, 17)
    assert sampler.tokens_seen == 5 * 32 + 64


def test_rows_are_consecutive_tokens_of_a_source(mixture):
    sampler = MixtureSampler(mixture, batch_size=8, total_tokens=10**6, seed=3)
    _, batch = sampler.next_batch()
    assert batch.dtype == np.int64
    for row in batch:
        assert np.all((np.diff(row) == 1) | (np.diff(row) == -99))


def test_weights_are_honoured(mixture):
    sampler = MixtureSampler(mixture, batch_size=64, total_tokens=64 * 8, seed=1)
    sampler.tokens_seen = 10**6  # in the "focus" stage: a 25 %, b 75 %
    rows = np.concatenate([sampler.next_batch()[1] for _ in range(30)])
    share_b = float(np.mean(rows[:, 0] >= 500))
    assert 0.70 < share_b < 0.80


def test_same_seed_same_batches_other_seed_differs(mixture):
    def batches(seed):
        sampler = MixtureSampler(mixture, batch_size=4, total_tokens=400, seed=seed)
        return [sampler.next_batch()[1] for _ in range(8)]

    first, again, other = batches(7), batches(7), batches(8)
    assert all(np.array_equal(x, y) for x, y in zip(first, again, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(first, other, strict=True))


def test_resume_from_state_gives_identical_batches(mixture):
    straight = MixtureSampler(mixture, batch_size=4, total_tokens=400, seed=5)
    expected = [straight.next_batch()[1] for _ in range(10)]

    interrupted = MixtureSampler(mixture, batch_size=4, total_tokens=400, seed=5)
    for _ in range(4):
        interrupted.next_batch()
    state = dict(interrupted.state_dict())
    resumed = MixtureSampler(mixture, batch_size=4, total_tokens=400, seed=5)
    resumed.load_state_dict(state)
    rest = [resumed.next_batch()[1] for _ in range(6)]
    assert all(np.array_equal(x, y) for x, y in zip(expected[4:], rest, strict=True))


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({**_table(), "seed": 3}, "unknown key seed; allowed: sources, stages"),
        (_table(weights={"a": 0.5, "b": 0.6}), "stages[1]: weights sum to 1.1, not 1 (stage 'focus')"),
        (_table(weights={"a": 0.5, "c": 0.5}), "stage 'focus' weights source(s) c not listed under sources"),
        (_table(fraction=0.2), "stage fractions sum to 0.7, not 1"),
        (_table(seqlen=3), "unknown key stages[1].seqlen (did you mean stages[1].seq_len?); allowed: name, weights,"),
        (_table(seq_len=0), "stages[1].seq_len = 0: must be greater than 0"),
        (_table(seq_len=True), "stages[1].seq_len = true: must be an integer"),
        (_table(weights={"a": float("nan"), "b": 1.0}), "stages[1].weights.a = NaN: must be a finite number"),
        (_table(fraction="half"), 'stages[1].fraction = "half": must be a number'),
        ({"sources": {"a": "a"}}, "stages is missing (required)"),
        ({"sources": {"a": "a"}, "stages": []}, "stages must list at least one stage ([[stages]] in TOML)"),
        ({"sources": {"a": 3}, "stages": []}, "sources.a = 3: must be a path (a string)"),
        ([1], "[1]: must be a table"),
    ],
)
def test_invalid_tables_name_the_key_the_value_and_what_is_allowed(tmp_path, table, message):
    with pytest.raises(ConfigError) as raised:
        mixture_from_dict(table, tmp_path)
    assert str(raised.value).startswith(f"mixture: {message}")


def test_a_mixture_file_names_itself_in_its_errors(tmp_path):
    (tmp_path / "m.toml").write_text(
        'sources = { a = "a" }\n[[stages]]\nfraction = 1\nseq_len = 4\nweights = { a = 1 }\n'
    )
    assert load_mixture(tmp_path / "m.toml").stages[0].name == "stage0"  # unnamed stages are named by place
    (tmp_path / "bad.toml").write_text('sources = { a = "a" }\nstage = []\n')
    with pytest.raises(ConfigError) as raised:
        load_mixture(tmp_path / "bad.toml")
    assert str(raised.value) == (
        f"{tmp_path / 'bad.toml'}: stages is missing (required); "
        "unknown key stage (did you mean stages?); allowed: sources, stages"
    )


def test_missing_shard_directory_is_a_config_error(tmp_path):
    config = mixture_from_dict(_table(), tmp_path)
    with pytest.raises(ConfigError, match="shard directory .* does not exist"):
        MixtureSampler(config, batch_size=2, total_tokens=100, seed=0).next_batch()


def test_mimo_template_has_three_stages_with_code_and_math_raised():
    config = load_mixture(REPO / "training" / "configs" / "mixture-mimo.toml")
    broad, code_math, reasoning = config.stages
    assert code_math.weights["code"] + code_math.weights["math"] == pytest.approx(0.7)
    assert reasoning.seq_len > code_math.seq_len
    assert "reasoning" in reasoning.weights and "reasoning" not in broad.weights


def test_yaml_and_toml_load_the_same_mixture(tmp_path):
    (tmp_path / "m.yaml").write_text(
        "sources: {a: a, b: b}\nstages:\n  - {name: only, fraction: 1, seq_len: 4, weights: {a: 0.5, b: 0.5}}\n"
    )
    (tmp_path / "m.toml").write_text(
        'sources = { a = "a", b = "b" }\n[[stages]]\nname = "only"\nfraction = 1\nseq_len = 4\n'
        "weights = { a = 0.5, b = 0.5 }\n"
    )
    assert load_mixture(tmp_path / "m.yaml") == load_mixture(tmp_path / "m.toml")
    assert load_mixture(tmp_path / "m.toml").sources["a"] == tmp_path / "a"

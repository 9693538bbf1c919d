"""How the vLLM backend configures vLLM: MTP only for MiMo checkpoints with MTP layers, k from 1 to 8.

These check the pure argument builder and run without vLLM installed; test_vllm.py runs vLLM itself.
"""

import json

import pytest

from engine.api import BadRequest
from engine.grammar import JSON_LAYOUT, SchemaRejected
from engine.vllm_engine import checkpoint_mtp_layers, engine_arguments, guidance_schema, schema_refusal


def write_config(path, **config):
    (path / "config.json").write_text(json.dumps(config))
    return path


def arguments(path, *, k=1, mtp_layers=1, **options):
    return engine_arguments(
        path,
        dtype="float32",
        max_model_len=256,
        num_speculative_tokens=k,
        mtp_layers=mtp_layers,
        enforce_eager=True,
        options=options,
    )


def test_a_mimo_checkpoint_reports_its_mtp_layers(tmp_path):
    write_config(tmp_path, architectures=["MiMoForCausalLM"], num_nextn_predict_layers=1)
    assert checkpoint_mtp_layers(tmp_path) == 1


def test_a_plain_checkpoint_has_no_mtp_even_with_the_field(tmp_path):
    write_config(tmp_path, architectures=["Qwen2ForCausalLM"], num_nextn_predict_layers=1)
    assert checkpoint_mtp_layers(tmp_path) == 0


def test_mtp_is_configured_with_one_speculative_token(tmp_path):
    args = arguments(tmp_path)
    assert args["speculative_config"] == {"method": "mtp", "num_speculative_tokens": 1}
    assert args["per_request_spec_decode_metrics"] == "summary"


@pytest.mark.parametrize(("k", "mtp_layers"), [(0, 1), (1, 0)])
def test_no_speculation_when_disabled_or_the_model_has_no_mtp(tmp_path, k, mtp_layers):
    args = arguments(tmp_path, k=k, mtp_layers=mtp_layers)
    assert "speculative_config" not in args
    # vLLM rejects per-request spec-decode metrics without a speculative config.
    assert "per_request_spec_decode_metrics" not in args


def test_more_drafts_rerun_the_mtp_layer_up_to_the_limit(tmp_path):
    assert arguments(tmp_path, k=3)["speculative_config"] == {"method": "mtp", "num_speculative_tokens": 3}
    with pytest.raises(BadRequest, match="num_speculative_tokens=9: use 0 .* to 8"):
        arguments(tmp_path, k=9)


def test_schemas_are_enforced_by_llguidance_as_compact_json(tmp_path):
    # vLLM's "guidance" backend refuses what llguidance cannot enforce; xgrammar accepted and ignored it.
    assert arguments(tmp_path)["structured_outputs_config"] == {"backend": "guidance", "disable_any_whitespace": True}


def test_a_schema_reaches_vllm_in_the_native_layout_unless_it_sets_its_own():
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    assert guidance_schema(schema) == {**schema, "x-guidance": JSON_LAYOUT}
    assert "x-guidance" not in schema  # the request's own schema is left alone
    own = {**schema, "x-guidance": {"whitespace_flexible": False}}
    assert guidance_schema(own) == own


@pytest.mark.parametrize(
    "message",
    ["Grammar error: Unimplemented keys", "The JSON schema is nested too deeply: at most 64 levels"],
)
def test_vllms_own_refusal_of_a_schema_names_response_format(message):
    refusal = schema_refusal(BadRequest(message))
    assert isinstance(refusal, SchemaRejected) and refusal.param == "response_format"
    assert str(refusal) == f"response_format: vLLM refused the JSON schema: {message}"
    other = BadRequest("top_p must be in (0, 1]")
    assert schema_refusal(other) is other


def test_extra_options_reach_vllm_and_win(tmp_path):
    args = arguments(tmp_path, gpu_memory_utilization=0.5, enforce_eager=False)
    assert args["gpu_memory_utilization"] == 0.5
    assert args["enforce_eager"] is False
    assert args["model"] == str(tmp_path)

"""What `response_format` costs on the native backend: greedy decoding of `mimo bench decode`'s prompts, plain and
MTP, without a schema and under three, in one run (each prompt runs every case in turn, so the machine's load
hits them alike). Prints JSON: per case the decode rates, MTP's speedup and acceptance, whether greedy MTP output
equals plain output, how the samples ended and whether every one that stopped validates; and the grammar's own
cost per token (mask, apply, advance), replayed over the tokens the run produced.

    OMP_NUM_THREADS=1 flock /tmp/mimo-heavy.lock .venv/bin/python scripts/bench_response_format.py --rounds 2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import asdict

import jsonschema
import torch

from engine.api import EngineError, GenerationRequest, SamplingParams, collect
from engine.bench import PROMPTS, figures
from engine.grammar import GrammarState
from engine.native import NativeEngine
from engine.registry import NANO_DIR

REPORT = {
    "type": "object",
    "properties": {
        "ok": {"type": "boolean"},
        "level": {"enum": ["low", "high"]},
        "count": {"type": "integer", "minimum": 0, "maximum": 99},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 5}, "maxItems": 3},
    },
    "required": ["ok", "level", "count", "tags"],
    "additionalProperties": False,
}
FINDINGS = {  # shaped like mimo review's findings
    "type": "object",
    "properties": {
        "findings": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "path": {"type": "string"},
                    "start_line": {"type": "integer", "minimum": 1},
                    "severity": {"enum": ["error", "warning", "note"]},
                    "rule": {"type": "string", "pattern": "^[a-z0-9-]{1,40}$"},
                },
                "required": ["path", "start_line", "severity", "rule"],
            },
        }
    },
    "required": ["findings"],
}
CASES = {"none": None, "json_object": {"type": "object"}, "report": REPORT, "findings": FINDINGS}


def request(prompt: str, schema, tokens: int, use_mtp: bool) -> GenerationRequest:
    return GenerationRequest(
        prompt=prompt, sampling=SamplingParams(max_tokens=tokens, json_schema=schema), use_mtp=use_mtp
    )


async def run(tokens: int, rounds: int, draft_tokens: int) -> dict:
    engine = NativeEngine(NANO_DIR, threads=1, draft_tokens=draft_tokens)
    results = {(case, mtp): [] for case in CASES for mtp in (False, True)}
    try:
        for schema in CASES.values():  # warm-up (and the grammar's first compile), not measured
            await collect(engine, request(PROMPTS[0], schema, 8, False))
        for index, prompt in enumerate(PROMPTS * rounds):
            for case, schema in CASES.items():
                for use_mtp in (False, True):
                    results[case, use_mtp].append(await collect(engine, request(prompt, schema, tokens, use_mtp)))
            print(f"prompt {index + 1}/{len(PROMPTS) * rounds}", file=sys.stderr)
        report = {case: summary(results[case, False], results[case, True], schema) for case, schema in CASES.items()}
        baseline = report["none"]
        for case in CASES:
            report[case]["plain_rate_vs_none"] = (
                report[case]["plain"]["tokens_per_s"] / baseline["plain"]["tokens_per_s"]
            )
            report[case]["mtp_rate_vs_none"] = report[case]["mtp"]["tokens_per_s"] / baseline["mtp"]["tokens_per_s"]
            if CASES[case] is not None:
                report[case]["grammar_us_per_token"] = grammar_cost(engine, CASES[case], results[case, False])
        return {
            "model": "nano",
            "device": str(engine.lm.device),
            "tokens": tokens,
            "prompts": len(PROMPTS) * rounds,
            "draft_tokens": draft_tokens,
            "cases": report,
        }
    finally:
        await engine.aclose()


def summary(plain, mtp, schema) -> dict:
    plain_figures, mtp_figures = figures(plain), figures(mtp)
    ended = [(text, reason) for r in plain + mtp for text, reason in zip(r.texts, r.finish_reasons)]
    valid = None
    if schema is not None:
        stopped = [text for text, reason in ended if reason == "stop"]
        valid = all(validates(text, schema) for text in stopped)
    return {
        "plain": asdict(plain_figures),
        "mtp": asdict(mtp_figures),
        "speedup": mtp_figures.tokens_per_s / plain_figures.tokens_per_s,
        "acceptance_per_position": [a / mtp_figures.mtp_steps for a in mtp_figures.accepted_per_position],
        "identical": all(a.texts == b.texts for a, b in zip(plain, mtp)),
        "stopped": sum(reason == "stop" for _, reason in ended),
        "length": sum(reason == "length" for _, reason in ended),
        "every_stop_validates": valid,
    }


def validates(text: str, schema: dict) -> bool:
    try:
        jsonschema.validate(json.loads(text), schema)
    except (ValueError, jsonschema.ValidationError):
        return False
    return True


def grammar_cost(engine: NativeEngine, schema: dict, results) -> float:
    """Mean microseconds a token for fill + apply + advance, replaying the greedy outputs on nano's logit width."""
    grammar = engine.grammars.compile(schema)
    logits = torch.zeros(engine.lm.vocab_size)
    spent, count = 0.0, 0
    for result in results:
        state = GrammarState(grammar, 1)
        for token in engine.tokenizer.encode(result.texts[0]):
            began = time.perf_counter()
            state.fill()
            state.apply(logits)
            try:
                state.advance(token)
            except EngineError:  # the text re-encoded into tokens the grammar spells differently: stop there
                break
            spent += time.perf_counter() - began
            count += 1
    return spent / max(count, 1) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--draft-tokens", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(json.dumps(asyncio.run(run(args.tokens, args.rounds, args.draft_tokens)), indent=2))


if __name__ == "__main__":
    main()

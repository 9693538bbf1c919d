"""Sampling parameters through the official `openai` client against `mimo serve`'s app (uvicorn on a loopback
port) with the shipped mimo-nano on the native backend: each one the server accepts changes the output the way
its definition says, and the refused ones come back as the client's BadRequestError."""

from __future__ import annotations

import openai
import pytest
from server_helpers import serving

from engine.registry import NANO_DIR
from engine.server.app import create_app
from engine.server.metrics import ServerMetrics
from engine.server.serving import Admission, ServingContext

pytestmark = [pytest.mark.usefixtures("one_torch_thread")]

PROMPT = "def fibonacci(n):\n    "
LIST = "primes = [2, 3, 5, 7, 11, 13]\nones = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,"


@pytest.fixture(scope="module")
def client():
    from engine.native import NativeEngine

    engine = NativeEngine(NANO_DIR, threads=1)
    ctx = ServingContext(engine=engine, model_names=("nano",), metrics=ServerMetrics(), admission=Admission(8))
    with serving(create_app(ctx)) as url:
        yield openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(NANO_DIR)


def complete(client, prompt: str = PROMPT, **options) -> str:
    return (
        client.completions.create(model="nano", prompt=prompt, max_tokens=12, temperature=0, **options).choices[0].text
    )


def test_a_bias_of_minus_100_on_the_greedy_first_token_changes_the_output(client, tokenizer):
    free = complete(client)
    first = tokenizer.encode(free)[0]
    biased = complete(client, logit_bias={str(first): -100})
    assert biased != free and tokenizer.encode(biased)[0] != first
    # And a bias of +100 makes a token the greedy choice.
    forced = tokenizer.encode(" pass")[0]
    assert complete(client, logit_bias={str(forced): 100}).startswith(tokenizer.decode([forced]) * 3)


@pytest.mark.parametrize("penalty", ["frequency_penalty", "presence_penalty"])
def test_a_penalty_of_2_on_a_repeating_list_changes_the_output(client, penalty):
    free = complete(client, prompt=LIST)
    assert free.count("1,") >= 4  # nano continues the list
    penalised = complete(client, prompt=LIST, **{penalty: 2.0})
    assert penalised != free and penalised.count("1,") < free.count("1,")


def test_chat_applies_the_penalties_too(client):
    messages = [{"role": "user", "content": LIST}]
    free = client.chat.completions.create(model="nano", messages=messages, max_tokens=12, temperature=0)
    penalised = client.chat.completions.create(
        model="nano", messages=messages, max_tokens=12, temperature=0, frequency_penalty=2.0, presence_penalty=2.0
    )
    assert penalised.choices[0].message.content != free.choices[0].message.content


def test_seeded_samples_repeat_and_differ_from_the_next_seeds(client):
    def samples(seed: int) -> list[str]:
        answer = client.completions.create(model="nano", prompt=PROMPT, max_tokens=10, temperature=1.0, seed=seed, n=3)
        return [choice.text for choice in answer.choices]

    assert samples(2**64 - 1) == samples(-1)  # one 64-bit pattern, two spellings
    assert not set(samples(10)) & set(samples(11))


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"seed": 2**64}, "seed: seed must be an integer from -2**63 to 2**64 - 1"),
        ({"extra_body": {"top_k": 40}}, "top_k: not supported"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "at most 4 stop sequences"),
        ({"temperature": 1e-38, "logit_bias": {"999999": 5}}, "token id 999999 is not in the vocabulary"),
    ],
)
def test_refused_values_are_the_clients_bad_request_error(client, options, words):
    with pytest.raises(openai.BadRequestError) as refused:
        client.completions.create(model="nano", prompt=PROMPT, max_tokens=2, **options)
    assert words in str(refused.value)

"""EngineRouter with a real RemoteEngine as primary (a real HTTP server, a closed port, a slow server) and a
scripted local engine as fallback."""

from __future__ import annotations

import asyncio
import threading

import pytest
from server_helpers import ScriptedEngine, app_failing_mid_stream, free_port, serving, wait_for
from test_server import make_app

from engine.api import EngineError, GenerationRequest, PromptTooLong, collect
from engine.remote import RemoteEngine
from engine.router import EngineRouter, RouterConfig

REQUEST = GenerationRequest(prompt="x")


def remote(url: str, **options) -> RemoteEngine:
    return RemoteEngine(url, model="tiny", connect_retries=0, **options)


class Changes(list):
    """Records on_change calls and lets a test wait for the next one."""

    def __init__(self) -> None:
        super().__init__()
        self.event = asyncio.Event()

    def __call__(self, reason: str | None) -> None:
        self.append(reason)
        self.event.set()

    async def next(self, timeout_s: float = 10.0) -> str | None:
        await asyncio.wait_for(self.event.wait(), timeout_s)
        self.event.clear()
        return self[-1]


async def test_a_healthy_primary_serves_and_no_fallback_is_shown():
    local, changes = ScriptedEngine(("local",)), Changes()
    with serving(make_app(ScriptedEngine(("remote",)))) as url:
        router = EngineRouter(remote(url), local, on_change=changes)
        result = await collect(router, REQUEST)
        assert result.texts == ["remote"]
        assert router.info().fallback_reason is None and router.info().backend == "remote"
        await router.aclose()
    assert not local.requests and changes == [] and local.closed


async def test_an_unreachable_primary_falls_back_then_switches_back_when_it_comes_up():
    port, local, changes = free_port(), ScriptedEngine(("local",)), Changes()
    router = EngineRouter(
        remote(f"http://127.0.0.1:{port}"),
        local,
        RouterConfig(latency_budget_s=2.0, retry_interval_s=0.1),
        on_change=changes,
    )

    assert (await collect(router, REQUEST)).texts == ["local"]
    reason = await changes.next()
    assert reason.startswith("using local fallback: cannot reach http://127.0.0.1:")
    assert router.info().fallback_reason == reason and router.info().backend == "scripted"
    assert (await collect(router, REQUEST)).texts == ["local"]  # stays on the fallback meanwhile

    primary_engine, stop = ScriptedEngine(("remote",)), threading.Event()
    thread = threading.Thread(target=_serve_until, args=(make_app(primary_engine), port, stop))
    thread.start()
    try:
        assert await changes.next() is None  # the background probe found the primary again
        assert router.info().fallback_reason is None
        assert (await collect(router, REQUEST)).texts == ["remote"]
    finally:
        stop.set()
        thread.join()
        await router.aclose()
    assert changes == [reason, None]


def _serve_until(app, port: int, stop: threading.Event) -> None:
    with serving(app, port=port):
        stop.wait(30)


async def test_a_primary_slower_than_the_budget_is_abandoned_for_the_fallback():
    slow, local, changes = ScriptedEngine(("remote",), first_delay_s=5.0), ScriptedEngine(("local",)), Changes()
    with serving(make_app(slow)) as url:
        router = EngineRouter(
            remote(url), local, RouterConfig(latency_budget_s=0.3, retry_interval_s=60), on_change=changes
        )
        assert (await collect(router, REQUEST)).texts == ["local"]
        assert await changes.next() == "using local fallback: the primary sent nothing within 0.3 s"
        # the abandoned request was cancelled on the primary's server too
        assert await asyncio.to_thread(wait_for, slow.closed_early)
        await router.aclose()


async def test_a_bad_request_is_raised_not_sent_to_the_fallback():
    local, changes = ScriptedEngine(("local",)), Changes()
    with serving(make_app(ScriptedEngine(context_length=10))) as url:
        router = EngineRouter(remote(url), local, on_change=changes)
        with pytest.raises(PromptTooLong):
            await collect(router, GenerationRequest(prompt="x" * 50))
        await router.aclose()
    assert not local.requests and changes == []


async def test_a_primary_failing_mid_answer_raises_then_later_requests_use_the_fallback():
    local, changes = ScriptedEngine(("local",)), Changes()
    with serving(app_failing_mid_stream()) as url:
        router = EngineRouter(remote(url), local, RouterConfig(retry_interval_s=60), on_change=changes)
        with pytest.raises(EngineError, match="GPU fell off the bus"):
            await collect(router, REQUEST)  # text already reached the caller: not silently restarted
        assert (await changes.next()).startswith("using local fallback: the primary failed mid-answer")
        assert (await collect(router, REQUEST)).texts == ["local"]
        await router.aclose()

"""A worker: one sandbox slot (two uids), its two cgroups, its warm judge and, in batches, a warm agent.

Runs are sequential within a worker; a pool has several. The judge stays warm for the worker's life (it runs
trusted tests, and forks a clean child per job). The candidate's sandbox is fresh for every single run; a batch
(many candidates for one problem) reuses one agent sandbox, whose agent forks a fresh child per candidate and
kills everything and clears ``/work`` in between (see docs/verifier.md for why that is safe).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from training.verify.cgroups import CgroupSupport, detect
from training.verify.command import protections
from training.verify.limits import Limits
from training.verify.processes import AgentProcess, HarnessFailure, JudgeProcess
from training.verify.results import Protections
from training.verify.sandbox import SandboxConfig, check_sandbox
from training.verify.slots import DEFAULT_UID_BASE, Slot, acquire_slot, release_slot, sweep


@dataclass(frozen=True)
class VerifierConfig:
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)
    limits: Limits = field(default_factory=Limits)
    uid_base: int = DEFAULT_UID_BASE


class Worker:
    def __init__(self, config: VerifierConfig):
        check_sandbox(config.sandbox)
        self.config, self.limits = config, config.limits
        self.slot: Slot = acquire_slot(config.uid_base)
        self._judge: JudgeProcess | None = None
        self._agent: AgentProcess | None = None
        self.agents_started = 0  # candidate sandboxes started: one per single run, one per batch when all goes well
        support = detect()
        self.cgroups: CgroupSupport | None = support if support.available and self.slot.dedicated else None

    @property
    def protections(self) -> Protections:
        return protections(self.config.sandbox, self.limits, self.slot, self.cgroups, self.trusted_side)

    @property
    def trusted_side(self) -> str:
        where = "its own sandbox" if not self.config.sandbox.unsafe_no_sandbox else "a separate process"
        uid = ", another uid" if self.slot.dedicated else ""
        return f"judge process in {where}{uid}"

    def judge(self) -> JudgeProcess:
        if self._judge is None or not self._judge.alive:
            self._drop_judge()
            uid = self.slot.judge_uid if self.slot.dedicated else None
            self._judge = JudgeProcess(self.config.sandbox, self.limits, uid, self.cgroups)
        return self._judge

    def drop_judge(self) -> None:
        """After a judge that broke its protocol or ran past its time: the next job starts a new one."""
        self._drop_judge()

    def _drop_judge(self) -> None:
        if self._judge is not None:
            self._judge.close()
            self._judge = None
            sweep(self.slot, judge=True)

    def agent(self, warm: bool) -> AgentProcess:
        """The candidate's sandbox: a fresh one, or (``warm``) the batch's one, reset for the next candidate."""
        if warm and self._agent is not None and self._agent.alive:
            try:
                self._agent.reset()
                return self._agent
            except HarnessFailure:
                pass
        self.drop_agent()
        uid = self.slot.uid if self.slot.dedicated else None
        agent = AgentProcess(self.config.sandbox, self.limits, uid, self.cgroups)
        self.agents_started += 1
        if warm:
            self._agent = agent
        return agent

    def release_agent(self, agent: AgentProcess, healthy: bool) -> None:
        """After a run: a single run's sandbox always goes; the batch's stays only if it behaved."""
        if agent is self._agent and healthy and not agent.unclean:
            return
        if agent is self._agent:
            self._agent = None
        agent.close()
        sweep(self.slot)

    def drop_agent(self) -> None:
        if self._agent is not None:
            self._agent.close()
            self._agent = None
            sweep(self.slot)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.drop_agent()
        with contextlib.suppress(Exception):
            self._drop_judge()
        release_slot(self.slot)

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

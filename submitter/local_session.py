"""This machine's session: tasks run as processes here, started by a launcher that does not
make the engine wait (local_steps), their ends seen as they happen, their files written in
place rather than staged and copied."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from submitter import start_step
from submitter.config.models import HostConfig
from submitter.hostops import ArrayStart, PollResult, Running
from submitter.local_steps import LocalSteps, can_take
from submitter.local_steps import supported as local_steps_supported
from submitter.paths import Transfer
from submitter.prepare import PreparedTask
from submitter.render.wrapped import WrappedTask
from submitter.run_context import RunContext
from submitter.run_state import Tracked
from submitter.scratch import Scratch
from submitter.session import HostSession, SessionHooks
from submitter.states import TaskState
from submitter.task_files import empty_or_absent, remove_tree, write_new
from submitter.task_layout import LOG_FILES, SCHEDULER_LOGS, on_host

# This machine is asked cheaply and often: a finished task frees its slot within a few
# hundredths of a second.
FIRST_POLL_HERE = 0.02
# Tasks the launcher holds at least, beyond those it runs, to start as soon as a slot frees
# (enough for the engine's LAUNCHER_PASS_GAP of short tasks).
LOOKAHEAD = 8


class LocalSession(HostSession):
    first_poll = FIRST_POLL_HERE
    change_poll = FIRST_POLL_HERE
    rests_after_polls = False  # a look here reads what the launcher says, as it says it
    # a power cut here kills the tasks along with the client: no need to outlive it
    durable_starts = False

    def __init__(
        self,
        name: str,
        config: HostConfig,
        ctx: RunContext,
        hooks: SessionHooks,
        max_running: int | None = None,
    ) -> None:
        super().__init__(name, config, ctx, hooks, max_running)
        slots = self.run.max_running
        self.steps = LocalSteps(self.ops, slots) if local_steps_supported() else None
        # Handed to the launcher beyond its slots: the next tasks wait there, not here. Not
        # for a detached apply, which leaves once its first start step is done (a task held
        # then would make it wait for a slot).
        held = self.steps is not None and not ctx.detached
        self.ahead = max(slots, LOOKAHEAD) if held else 0
        # Removing a finished task's directory waits on the filesystem: a thread of its own
        # does it while the engine starts and polls.
        self.tidier = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tidy")

    @property
    def has_launcher(self) -> bool:
        return self.steps is not None

    def _write_files(
        self, task: PreparedTask, files: dict[str, str], scratch: Scratch
    ) -> list[Transfer]:
        """Straight into the task directory: nothing to send but the inputs."""
        os.makedirs(task.task_dir, exist_ok=True)
        for name, text in files.items():
            write_new(on_host(task.task_dir, name), text)
        return []

    def _shares_wrapper(self, task: PreparedTask) -> bool:
        return self._wrapped(task) is not None

    def _wrapped(self, task: PreparedTask | None) -> WrappedTask | None:
        """The task's values for the launcher's shared wrapper, if the launcher runs it so."""
        if self.steps is None or task is None or not can_take(task.task_id, task.task_dir):
            return None
        return task.wrapped

    def launch(self, running: list[Running], starts: list[ArrayStart]) -> bool:
        if self.steps is None or starts or not self.steps.can_launch(running):
            return False
        active = self.run.active
        self.steps.launch([(r, self._wrapped(active[r.task].prepared)) for r in running])
        return True

    def take_launched(self) -> None:
        if self.steps is None:
            return
        answers = self.steps.answers()
        if not answers:
            return
        with self.ctx.store.transaction():
            for task_id, outcome in answers.items():
                tracked = self.run.active.get(task_id)
                if tracked is not None and tracked.job_id is None:
                    start_step.started(self, tracked, outcome, "started")

    def exits_to_watch(self) -> set[int]:
        return {
            int(t.job_id)
            for t in self.run.active.values()
            if t.job_id is not None and t.job_id.isdigit()
        }

    def readable(self) -> int | None:
        return self.steps.readable() if self.steps is not None else None

    def _watched(self) -> list[Tracked]:
        watched = super()._watched()
        if self.steps is None:
            return watched
        return [t for t in watched if not self.steps.awaiting(t.id)]

    def _query(self, watched: list[Tracked], asking: bool) -> tuple[PollResult, str | None]:
        if self.steps is not None and all(t.job_id for t in watched):
            return self.steps.poll([t.as_running() for t in watched]), None
        return super()._query(watched, asking)

    def _log_transfers(self, tracked: Tracked, incoming: Scratch) -> list[Transfer]:
        """The logs are read where they are (a transfer onto itself brings nothing); an empty
        scheduler file is seen here, and left out."""
        return [
            Transfer(Path(remote), remote)
            for name in LOG_FILES
            if (remote := on_host(tracked.task_dir, name))
            and (name not in SCHEDULER_LOGS or not empty_or_absent(remote))
        ]

    def tidy(self, tracked: Tracked, state: str) -> None:
        """Nothing was staged here; a completed task's directory under work_dir goes, its
        outputs and logs having been brought back."""
        if state == TaskState.COMPLETED:
            self.tidier.submit(remove_tree, tracked.task_dir)

    def close(self) -> None:
        self.tidier.shutdown(wait=True)
        if self.steps is not None:
            self.steps.close()
        super().close()

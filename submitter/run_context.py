"""What every host session of one engine shares: the store, the progress lines, the seams, and
the one way a task moves on, in this run's memory and in the store together."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from submitter.identity import SignatureCache
from submitter.progress import Progress
from submitter.run_state import Tracked
from submitter.seams import Seams
from submitter.states import IllegalTransition, TaskState
from submitter.store.db import Store


@dataclass
class RunContext:
    store: Store
    progress: Progress
    seams: Seams
    signatures: SignatureCache
    may_start: bool = False  # only `apply` starts tasks; status and kill only look
    detached: bool = False  # apply --detach: what it submits must end without a client
    may_retry: bool = True  # what `kill` stops is not retried, whatever it ends with
    # an `apply` runs meanwhile (`status` and the like): the starts it has not had answered
    # are its own to settle; settling them here would claim starts its launcher holds
    leaves_starts: bool = False
    up_to_date: set[str] = field(default_factory=set)  # names of the tasks skipped in this run

    def move(
        self,
        tracked: Tracked,
        state: TaskState | str,
        reason: str,
        *,
        event: str | None = None,
        attempt: bool = False,
        **fields: Any,
    ) -> None:
        """Move a task to `state` in this run and in the store together (the store checks
        the move against the life cycle's table); with `attempt`, its current attempt too.
        Only `apply` moves its tasks on: a `status` or `kill` that meets a task an `apply`
        moved meanwhile leaves the apply's move standing."""
        try:
            self.store.transition(
                tracked.id,
                state,
                reason,
                attempt_id=tracked.attempt_id if attempt else None,
                event=event,
                **fields,
            )
        except IllegalTransition:
            record = None if self.may_start else self.store.task(tracked.id)
            if record is None:
                raise
            tracked.state, tracked.reason = record.state, record.reason
            return
        tracked.state, tracked.reason = str(state), reason

"""`prunescope jobs list | watch ID | cancel ID | retry ID`: the background jobs of a store (see
`--background` on prune, attack, speed, export and sweep)."""

from __future__ import annotations

import time
from pathlib import Path

from pruning_core.cli.common import Parser, integer, wide_console
from pruning_core.core.errors import PrunescopeError


def register(subparsers) -> None:
    jp = subparsers.add_parser("jobs", help="list, watch, cancel or retry background jobs")
    sub = jp.add_subparsers(dest="action", required=True, parser_class=Parser)
    job_id = integer(1, 2**62, "a job id (a positive integer)")
    ls = sub.add_parser("list", help="the newest jobs: state, progress, result or error")
    ls.add_argument("--state", action="append", default=None, help="only jobs in this state (repeatable)")
    ls.add_argument("--limit", type=integer(1, 100_000, "from 1 to 100,000"), default=50)
    for name, text in (("watch", "print a job's progress as it comes until it ends (exit 0 done, 1 otherwise)"),
                       ("cancel", "cancel a queued or running job (nothing of it is stored)"),
                       ("retry", "submit a failed or cancelled job again")):
        sp = sub.add_parser(name, help=text)
        sp.add_argument("id", type=job_id, metavar="ID")
    for sp in (ls, *(sub.choices[n] for n in ("watch", "cancel", "retry"))):
        sp.add_argument("--store", type=Path, default=None, help="results store (default: PRUNESCOPE_DB)")


def run(args) -> int:
    from pruning_core.storage.store import Store

    store = Store(args.store)
    return {"list": list_, "watch": watch, "cancel": cancel, "retry": retry}[args.action](store, args)


def _ago(t: float | None) -> str:
    if t is None:
        return ""
    s = time.time() - t
    return f"{s:.0f} s ago" if s < 120 else f"{s / 60:.0f} min ago" if s < 7200 else f"{s / 3600:.0f} h ago"


def list_(store, args) -> int:
    from rich.markup import escape
    from rich.table import Table

    from pruning_core.jobs import list_jobs

    jobs = list_jobs(store, args.state, limit=args.limit)
    table = Table(title=f"jobs in {store.path}")
    for col in ("id", "kind", "state", "what", "progress", "session", "created", "result / error"):
        table.add_column(col, justify="right" if col == "id" else "left")
    colour = {"done": "green", "failed": "red", "running": "yellow", "cancelled": "dim", "queued": "cyan"}
    for j in jobs:
        progress = j.progress_text or ("" if j.progress is None else f"{j.progress:.0%}")
        table.add_row(str(j.id), j.kind, f"[{colour[j.state]}]{j.state}[/]", escape(j.label), escape(progress),
                      escape(j.session or ""), _ago(j.created), escape(j.error or j.result_key or ""))
    wide_console().print(table)
    if not jobs:
        print("no jobs" + (f" in state {', '.join(args.state)}" if args.state else ""))
    return 0


def event_line(ev: dict) -> str:
    """The console line of one job event: records as a foreground prune prints them."""
    from rich.markup import escape

    from pruning_core.cli.prune import record_line, stage_line
    from pruning_core.jobs import record_of

    d = ev["data"]
    if ev["type"] in ("layer", "block", "step"):
        return record_line(record_of(ev))
    if ev["type"] == "stage":
        return stage_line(d["text"])
    if ev["type"] == "example":
        return escape(f"  example {d['done']} of {d['total']}: {d.get('result')}")
    return escape(str(d.get("text", d)))


def watch(store, args) -> int:
    from rich.markup import escape

    from pruning_core.jobs import ahead, events, get

    con = wide_console(stderr=True)
    job = get(store, args.id)
    if job is None:
        raise PrunescopeError(f"no job {args.id} in {store.path}; see `prunescope jobs list`")
    con.print(f"job {job.id} ({job.kind}): {escape(job.label)}", highlight=False)
    seen, said_queue = 0, None
    while True:
        job = get(store, args.id)
        for ev in events(store, job.id, seen):
            con.print(event_line(ev), highlight=False, soft_wrap=True)
            seen = ev["seq"]
        if not job.active:
            break
        if job.state == "queued":
            n = ahead(store, job.id)
            if n != said_queue:
                con.print(f"[dim]queued: {n} job{'s' * (n != 1)} ahead[/]")
                said_queue = n
        time.sleep(0.3)
    if job.state == "done":
        print(f"job {job.id} done: {job.result_key or ''}")
        return 0
    print(f"job {job.id} {job.state}" + (f": {job.error}" if job.error else ""))
    return 1


def cancel(store, args) -> int:
    from pruning_core.jobs import cancel as cancel_job, get

    job = get(store, args.id)
    if job is None:
        raise PrunescopeError(f"no job {args.id} in {store.path}; see `prunescope jobs list`")
    if not cancel_job(store, args.id):
        print(f"job {args.id} has already ended ({job.state})")
        return 1
    print(f"job {args.id}: cancel asked" + (" (it stops at its next record)" if job.state == "running" else ""))
    return 0


def retry(store, args) -> int:
    from pruning_core.jobs import retry as retry_job

    job, how = retry_job(store, args.id)
    if job is None:
        print(f"job {args.id}: its result is already stored")
    else:
        print(f"job {job.id}: {how} (retry of job {args.id}): {job.label}")
    return 0

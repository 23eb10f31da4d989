"""Jobs: long work (prune, attack, speed, export, sweep) queued in the store and run by a local pool of
persistent worker processes, coalesced by key, followed through its events (see api.py)."""

from pruning_core.jobs.api import (KINDS, MAX_ACTIVE, MAX_PER_SESSION, STATES, Job, ahead, cancel, ensure_pool,
                                   events, get, job_key, list_jobs, record_of, retry, submit, wait, warm_up)

__all__ = ["KINDS", "MAX_ACTIVE", "MAX_PER_SESSION", "STATES", "Job", "ahead", "cancel", "ensure_pool", "events",
           "get", "job_key", "list_jobs", "record_of", "retry", "submit", "wait", "warm_up"]

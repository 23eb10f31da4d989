"""`python -m pruning_core.jobs supervise STORE | work STORE SUPERVISOR_PID THREADS`: the pool's processes."""

import sys

import pruning_core.jobs.pool as pool

sys.exit(pool.main(sys.argv[1:]))

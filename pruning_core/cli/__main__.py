"""`python -m pruning_core.cli ...` (what background sweeps run), the same as `prunescope ...`."""

import sys

import pruning_core.cli

sys.exit(pruning_core.cli.main())

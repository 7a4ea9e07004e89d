"""The code location's assets and resources with Dagster's multiprocess executor, for comparison.

Used by bench/pipeline_bench.py only, as
`dagster asset materialize -f bench/multiprocess_definitions.py --select '*'`.
"""

import dagster as dg

from jaffle_platform import definitions

# Only one Definitions object may sit at module scope, so the original is reached via its module.
defs = dg.Definitions(
    assets=definitions.defs.assets,
    resources=definitions.defs.resources,
    executor=dg.multiprocess_executor,
)

"""Drive the compose stack from outside: compose and docker, the webserver's GraphQL API and the
warehouse volume, for the stack tests (tests/stack), bench/stack_bench.py and the operator
scripts `python -m jaffle_stack.up`, `python -m jaffle_stack.compose` and
`python -m jaffle_stack.launch_run`. Run from the repository root; never part of an image
(docs/stack.md)."""

"""The merge-on-read gate (issue 44): silver's batch appending to a change log, measured beside
silver as shipped and the append floor at the same load.

`python -m tools.mor_gate --rate 300 --duration 150` on a running native stack (`make up`). Three
runs, one after the other, with the same seed, rate and duration: silver as it runs; then silver
stopped and `tools.mor_gate.job` — silver's own job and batch with every write an append to the
table's change log (no MERGE, no read of the table, no tombstone commit) — in its place, under
`proto/` in the bucket; then the append floor (`bench --floor --floor-write append`). Writes
`gate.json` and `gate.png` (the three freshness CDFs) to `--out`.
"""

"""`lakehouse bench`: freshness per hop under load, throughput, snapshot time, footprint."""

from typing import Literal, get_args

#: how the benchmark's floor job writes Delta (benchmark/floor.py, `bench --floor-write`)
FloorWrite = Literal["merge", "append"]
FLOOR_WRITES: tuple[str, ...] = get_args(FloorWrite)

"""Entry point for `spark-submit spark_streaming/job.py` (the same job `lakehouse up` starts)."""

import sys

from lakehouse.pipeline.silver.__main__ import main

if __name__ == "__main__":
    sys.exit(main())

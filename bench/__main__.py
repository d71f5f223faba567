"""``make bench``: each figure printed beside its baseline from the same run.

- per-send CPU: POST /sms through the app (the API function's handler called with API Gateway's proxy
  event) against a loopback fake AWS, beside the bare boto3 calls that one send makes (the same calls with
  the same parameters, on the same clients), in adjacent blocks (``bench/per_send.py``), with the app
  logging at INFO as deployed (a line per send). Target: at most 0.40 ms more. Beside it, for comparison with
  the figures before 2026-12-06, the same without the log line.
- cold import (``bench/cold_start.py``): every function the stack deploys, each its handler module, what
  its first event imports and its clients, against bare ``import boto3`` plus the same clients, each in a
  fresh process, in pairs side by side, each pair at its own depth of the call stack; the ratio is the
  median of the pairs'. Target <= 1.10 each.
- Lambda package: the size of the deployment zip ``chalice package`` builds.
- scale (``bench/scale.py``): a simulation on a virtual clock, with the worker's real pacing code,
  of a stage at 1,000 MPS draining 100,000 messages (SQS event source scaling, DynamoDB's limit
  per partition key, the provider's MPS), steady drains at MPS 20 and 100, and small backlogs, for
  today's design and the new one; and the report tally's counters at 1,000 MPS, one transaction per record
  against one per batch, and the items a 30-day report reads.
- API latency (``bench/api_latency.py``): p50, p99 and throughput of ``POST /sms`` and
  ``GET /messages/{id}`` under 16 concurrent clients on the local stack, beside bare Chalice routes
  on the same server (one bare, and ones making the same AWS calls without the app).
- webhooks (``bench/webhooks_latency.py``): on the local stack, receipt to webhook p50 and p99 beside send
  to receipt, ``POST /sms`` beside a receiver that never answers against without one, and deliveries per
  second to a local receiver with 16 events in flight, beside bare POSTs.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import per_send
from bench.per_send import ENV

ROOT = Path(__file__).resolve().parent.parent


def package_size() -> int | None:
    with tempfile.TemporaryDirectory() as out:
        result = subprocess.run([str(Path(sys.executable).parent / "chalice"), "package", out],
                                cwd=ROOT / "app", env={**os.environ, **ENV}, capture_output=True, text=True)
        if result.returncode != 0:
            print(result.stderr[-2000:])
            return None
        return (Path(out) / "deployment.zip").stat().st_size


def main() -> None:
    app_cpu, bare_cpu, extra = per_send.per_send_cpu()
    size = package_size()
    print(f"{'benchmark':<30}{'app':>10}{'baseline':>10}{'ratio':>8}  target")
    overhead = extra * 1e3
    verdict = "ok" if overhead <= per_send.OVERHEAD_MS else "MISS"
    print(f"{'per-send CPU (ms)':<30}{app_cpu * 1e3:>10.2f}{bare_cpu * 1e3:>10.2f}{app_cpu / bare_cpu:>8.2f}"
          f"  +{overhead:.2f} ms, <= +{per_send.OVERHEAD_MS:.2f} ms {verdict}")
    # The same without the send's log line (WARNING): the row as measured before 2026-12-06, for comparison.
    quiet_app, quiet_bare, quiet_extra = per_send.per_send_cpu(level="WARNING")
    print(f"{'  without its log line':<30}{quiet_app * 1e3:>10.2f}{quiet_bare * 1e3:>10.2f}"
          f"{quiet_app / quiet_bare:>8.2f}  +{quiet_extra * 1e3:.2f} ms")
    from bench import cold_start

    for name, ours, base, ratio, target in cold_start.rows():  # ratio: the median of paired runs' ratios
        verdict = "ok" if ratio <= target else "MISS"
        print(f"{name:<30}{ours:>10.1f}{base:>10.1f}{ratio:>8.2f}  <= {target:.2f} {verdict}")
    print(f"{'Lambda package (bytes)':<30}{size if size is not None else 'failed':>10}")
    print()
    from bench import keys

    keys.report(keys.rows())
    print()
    from bench import scale

    scale.report(scale.rows())
    scale.report_scheduled(scale.scheduled_rows(scale.scheduled()))
    print()
    scale.tally_report(scale.tally_rows())
    print()
    from bench import api_latency

    api_latency.report(api_latency.rows())
    print()
    from bench import webhooks_latency

    webhooks_latency.report(webhooks_latency.rows())


if __name__ == "__main__":
    main()

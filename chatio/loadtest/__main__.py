"""``chatio-loadtest`` and ``python -m chatio.loadtest``: ramp, converse, summarise.

Exit status: 0 when every connection opened and nothing was lost, 1 otherwise, 2 for bad settings.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
from collections.abc import Sequence
from typing import TextIO

from chatio.loadtest.config import LoadConfig, LoadConfigError, load_config
from chatio.loadtest.swarm import RampResult, StepResult, Swarm


def raise_file_limit(needed: int) -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; return the new soft limit."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if needed > hard:
        raise LoadConfigError(
            f"CONN_COUNT: {needed} connections need more file descriptors than this process may open "
            f"({hard}, the hard RLIMIT_NOFILE); run several generators"
        )
    return hard


async def run(config: LoadConfig, out: TextIO) -> tuple[RampResult, list[StepResult]]:
    """Ramp, run every step of the plan, close; print progress and the summary to ``out``."""
    swarm = Swarm(config, out)
    _print_config(config, swarm, out)
    try:
        ramp = await swarm.ramp()
        steps: list[StepResult] = []
        for number, (rate, seconds) in enumerate(config.steps() if ramp.connected else [], 1):
            steps.append(await swarm.hold(rate, seconds, label=f"step {number} "))
    finally:
        await swarm.close()
    print_summary(ramp, steps, swarm.tally.disconnects, out)
    return ramp, steps


def _print_config(config: LoadConfig, swarm: Swarm, out: TextIO) -> None:
    rooms = len({config.room_of(i) for i in range(config.conn_count)})
    print("=== chatio-loadtest ===", file=out)
    print(f"  target      : ws://{swarm.target.host}:{swarm.target.port}{swarm.target.path}", file=out)
    print(f"  connections : {config.conn_count} in {rooms} room(s) of {config.room_size or 'all'}", file=out)
    print(f"  ramp        : batches of {config.batch_size}, {config.batch_delay_ms} ms apart", file=out)
    print(f"  senders     : {config.sender_count}", file=out)
    for rate, seconds in config.steps():
        print(f"  step        : {rate:g} messages/s for {seconds:g}s", file=out)
    print(f"  latency     : timed on {config.latency_sample:.0%} of the receivers", file=out, flush=True)


def print_summary(ramp: RampResult, steps: Sequence[StepResult], disconnects: int, out: TextIO) -> None:
    total = ramp.connected + ramp.failed
    print("=== summary ===", file=out)
    print(
        f"connected {ramp.connected}/{total} in {ramp.seconds:.1f}s, connect errors {ramp.failed}, "
        f"disconnects during the run {disconnects}",
        file=out,
    )
    for reason, count in sorted(ramp.errors.items(), key=lambda item: -item[1])[:5]:
        print(f"  {count} x {reason}", file=out)
    for number, step in enumerate(steps, 1):
        print(describe_step(number, step), file=out)


def describe_step(number: int, step: StepResult) -> str:
    lat, ack = step.latency, step.ack_latency
    server = "" if step.server_cpu is None else f", server cpu {step.server_cpu:.0%}"
    if step.others_cpu is not None:
        server += f", other processes {step.others_cpu:.0%}"
    core = "" if step.generator_core_busy is None else f" (its core {step.generator_core_busy:.0%} busy)"
    lines = [
        f"step {number}: {step.rate:g} messages/s for {step.seconds:.1f}s",
        f"  sent {step.sent}, acked {step.acked}, ack errors {sum(step.ack_errors.values())}"
        + "".join(f" [{code} x{n}]" for code, n in step.ack_errors.items()),
        f"  delivered {step.delivered}/{step.expected} by the cut-off, "
        f"last delivery {step.drain_seconds * 1000:.0f} ms after the last send",
        f"  not yet delivered at the cut-off {step.undelivered_at_cutoff}: arrived after it "
        f"{step.after_cutoff}, lost {max(0, step.undelivered_at_cutoff - step.after_cutoff)} "
        f"(loss {step.loss:.3%})",
        f"  deliveries/s {step.deliveries_per_s:,.0f} (offered {step.offered_deliveries_per_s:,.0f})",
        f"  latency ms  p50 {lat.p50:.2f}  p95 {lat.p95:.2f}  p99 {lat.p99:.2f}  max {lat.max:.2f}"
        f"  ({lat.count} samples, {step.late} of them out of seq order)",
        f"  ack rtt ms  p50 {ack.p50:.2f}  p95 {ack.p95:.2f}  p99 {ack.p99:.2f}  max {ack.max:.2f}",
        f"  generator cpu {step.generator_cpu:.0%} of one core{core}, "
        f"{step.generator_us_per_delivery:.1f} us "
        f"per delivery, event loop late by up to {step.loop_lag_max_ms:.1f} ms{server}",
    ]
    if step.near_ceiling:
        lines.append(
            f"  !! the generator is near its own ceiling (cpu {step.generator_cpu:.0%}{core}): "
            "this step may measure the generator, not the server"
        )
    return "\n".join(lines)


def _write_json(config: LoadConfig, ramp: RampResult, steps: Sequence[StepResult]) -> None:
    if config.json_out is None:
        return
    document = {
        "ramp": {"connected": ramp.connected, "failed": ramp.failed, "seconds": ramp.seconds},
        "steps": [step.as_json() for step in steps],
    }
    config.json_out.write_text(json.dumps(document, indent=2, default=str))


def main(argv: Sequence[str] | None = None) -> None:
    try:
        config = load_config(argv, os.environ)
        raise_file_limit(config.conn_count + 64)
    except LoadConfigError as exc:
        print(f"chatio-loadtest: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    try:
        import uvloop
    except ImportError:
        ramp, steps = asyncio.run(run(config, sys.stdout))
    else:
        ramp, steps = uvloop.run(run(config, sys.stdout))
    _write_json(config, ramp, steps)
    lost = any(step.loss > 0 for step in steps)
    raise SystemExit(0 if ramp.failed == 0 and not lost else 1)


if __name__ == "__main__":
    main()

"""Cost of `@unsafe_debug` when FLEXLOCK_DEBUG is unset, against the undecorated call (issue 7).

    python benchmarks/bench_debug.py          # ~20 s
    python benchmarks/bench_debug.py --full   # 5x the rounds

Target: no measurable overhead on a real `main(cfg)`; the wrapper costs one extra Python
call, so a function that does nothing shows it and one that does real work does not.
Decorated and undecorated loops run interleaved (plain, decorated, plain, ...) and are
timed in process CPU time, so load from other users of this shared machine hits both
alike; figures are medians of the per-call time over the rounds, reported as ratios
decorated / undecorated. Results go to benchmarks/results/debug.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from flexlock.core import unsafe_debug

RESULTS = Path(__file__).parent / "results" / "debug.md"


def noop(value: int) -> int:
    return value


def small_work(value: int) -> int:
    # Tens of µs: about the cheapest function anyone would decorate as a main().
    return sum(range(value, value + 1_000))


def real_work(value: int) -> int:
    # A few ms: still a tiny main(cfg).
    return sum(range(value, value + 100_000))


def numbers(count: int) -> Iterator[int]:
    yield from range(count)


def iterate(make: Callable[[int], Iterator[int]]) -> Callable[[int], int]:
    def run(count: int) -> int:
        total = 0
        for item in make(count):
            total += item
        return total

    return run


def failing(value: int) -> int:
    raise ValueError(value)


def catch(function: Callable[[int], int]) -> Callable[[int], int]:
    def run(value: int) -> int:
        try:
            return function(value)
        except ValueError:
            return -1

    return run


CASES: list[tuple[str, Callable[[int], int], Callable[[int], int], int, int]] = [
    # (name, plain, decorated, argument, calls per round)
    ("call of a function that does nothing", noop, unsafe_debug(noop), 1, 20_000),
    ("call of a function summing 1,000 ints", small_work, unsafe_debug(small_work), 1, 2_000),
    ("call of a function summing 100,000 ints", real_work, unsafe_debug(real_work), 1, 20),
    (
        "generator, 1,000 items consumed",
        iterate(numbers),
        iterate(unsafe_debug(numbers)),
        1_000,
        200,
    ),
    ("raise and catch", catch(failing), catch(unsafe_debug(failing)), 1, 10_000),
]


def per_call_ns(function: Callable[[int], int], argument: int, calls: int) -> float:
    start = time.process_time_ns()
    for _ in range(calls):
        function(argument)
    return (time.process_time_ns() - start) / calls


def measure(rounds: int) -> list[tuple[str, float, float, float, float]]:
    rows = []
    for name, plain, decorated, argument, calls in CASES:
        per_call_ns(plain, argument, calls)  # warm up both
        per_call_ns(decorated, argument, calls)
        plain_times, decorated_times, added, ratios = [], [], [], []
        for _ in range(rounds):
            plain_ns = per_call_ns(plain, argument, calls)
            decorated_ns = per_call_ns(decorated, argument, calls)
            plain_times.append(plain_ns)
            decorated_times.append(decorated_ns)
            added.append(decorated_ns - plain_ns)
            ratios.append(decorated_ns / plain_ns)
        rows.append(
            (
                name,
                statistics.median(plain_times),
                statistics.median(decorated_times),
                statistics.median(added),
                statistics.median(ratios),
            )
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="5x the rounds")
    args = parser.parse_args(argv)
    os.environ.pop("FLEXLOCK_DEBUG", None)  # measure the "off" path
    rounds = 150 if args.full else 30
    rows = measure(rounds)
    lines = [
        "# `@unsafe_debug` overhead with FLEXLOCK_DEBUG unset",
        "",
        f"Command: `python benchmarks/bench_debug.py{' --full' if args.full else ''}` · "
        f"Python {platform.python_version()} · {platform.machine()} · {rounds} interleaved "
        "rounds, process CPU time, medians (of each column separately).",
        "",
        "| case | undecorated | decorated | added per call | ratio decorated/undecorated |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, plain_ns, decorated_ns, added_ns, ratio in rows:
        lines.append(
            f"| {name} | {plain_ns:,.0f} ns | {decorated_ns:,.0f} ns | "
            f"{added_ns:,.0f} ns | {ratio:.2f}x |"
        )
    lines += [
        "",
        "The wrapper is one extra Python call (`try: return func(*args, **kwargs)`); it reads",
        "FLEXLOCK_DEBUG only when an exception leaves the function, so the success path never",
        "touches the environment. A generator pays one `yield from` hop per item.",
    ]
    text = "\n".join(lines) + "\n"
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

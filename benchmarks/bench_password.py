"""Time of one argon2 password verification, the cost every sign-in pays (and what slows guessing)."""

from __future__ import annotations

import statistics
import time

from _common import machine, report
from argon2 import extract_parameters

from vigil.core.auth import hash_password, verify_password

ROUNDS = 30


def main() -> None:
    password = "Correct-Horse-42!"
    stored = hash_password(password)
    verify_password(stored, password)  # warm up
    timings = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        ok = verify_password(stored, password)
        timings.append((time.perf_counter() - started) * 1000)
        if not ok:
            raise SystemExit("the password did not verify: the benchmark measured nothing")
    used = extract_parameters(stored)
    params = f"argon2{used.type.name.lower()} t={used.time_cost} m={used.memory_cost} KiB p={used.parallelism}"
    report("argon2 verify per sign-in (median)", statistics.median(timings), "ms",
           f"{params}, {ROUNDS} verifications, {machine()}")


if __name__ == "__main__":
    main()

"""Whole-process start-up of the command line, next to the cost of importing the ORM.

A person or a CI job meets `milestones` as a fresh process. Each command below runs as
one, interleaved with the reference `python -c "import tortoise"` (the least any command
that reads the database must load), so a busy machine slows them all alike; the figure
is each command's median wall time and its ratio to the reference's median in the same
run, then its median CPU time (user and system) and that ratio, which a loaded machine
disturbs far less. The target is 1.5x or less for `--help` and for `status v2.0` on the demo database
(SQLite, in a temporary directory, migrated and loaded before timing).

With PYTHONDONTWRITEBYTECODE set (as on this project's machine), Python never writes
bytecode: without the README's `python -m compileall` it compiles the project's own
modules from source at every start, while the installed libraries come with their
bytecode. The first figures say which case they are; the commands are then timed a
second time with bytecode cached (in a temporary PYTHONPYCACHEPREFIX, warmed up first).

    python bench/startup.py            # 9 rounds
    python bench/startup.py --runs 15
    python bench/startup.py --instructions   # and the instructions each runs (valgrind)

Wall and CPU times of a virtual machine move from run to run, by a tenth or more. With
`--instructions`, each command then runs once more under valgrind's callgrind, which counts
the instructions it executes: the same code gives the same count whatever the load, so a
ratio of counts tells whether a change made start-up cheaper where timings cannot.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET = 1.5
ROOT = Path(__file__).resolve().parent.parent
MILESTONES = str(Path(sys.executable).parent / "milestones")
REFERENCE = 'python -c "import tortoise"'
# name: (command, its exit status)
COMMANDS = {
    REFERENCE: ([sys.executable, "-c", "import tortoise"], 0),
    "milestones --help": ([MILESTONES, "--help"], 0),
    "milestones status v2.0": ([MILESTONES, "status", "v2.0"], 0),
    "milestones list": ([MILESTONES, "list"], 0),
    # What each Tab runs: milestone names from the database.
    "milestones __complete status v (Tab)": ([MILESTONES, "__complete", "status", "v"], 0),
    "milestones deliveries --limit 0 (refused)": ([MILESTONES, "deliveries", "--limit", "0"], 2),
}


def timed(command: list[str], expected_status: int, cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall time and CPU time (user and system) of one run of `command`."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != expected_status:
        raise SystemExit(f"{' '.join(command)}: exit status {process.returncode}, expected {expected_status}")
    return elapsed, usage.ru_utime + usage.ru_stime


def instructions(command: list[str], expected_status: int, cwd: Path, env: dict[str, str]) -> int:
    """The instructions one run of `command` executes, as callgrind counts them."""
    log = cwd / "callgrind.log"
    completed = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", f"--log-file={log}", *command],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    if completed.returncode != expected_status:
        raise SystemExit(f"{' '.join(command)} under valgrind: exit status {completed.returncode}")
    found = re.search(r"Collected : (\d+)", log.read_text())
    if found is None:
        raise SystemExit(f"{' '.join(command)}: callgrind counted nothing (see {log})")
    return int(found.group(1))


def _goal(name: str, ratio: float) -> str:
    if name not in ("milestones --help", "milestones status v2.0"):
        return ""
    return f" (target {TARGET}x: {'met' if ratio <= TARGET else 'MISSED'})"


def _compiled(source: Path) -> bool:
    """Whether `source` has bytecode as new as itself (else Python compiles it at every start here)."""
    bytecode = Path(importlib.util.cache_from_source(str(source)))
    return bytecode.exists() and bytecode.stat().st_mtime >= source.stat().st_mtime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=9, help="rounds; each runs every command once (default 9)")
    parser.add_argument(
        "--instructions", action="store_true", help="also count each command's instructions under valgrind (callgrind)"
    )
    args = parser.parse_args()
    if args.instructions and shutil.which("valgrind") is None:
        parser.error("--instructions needs valgrind (Debian: apt-get install valgrind)")

    with tempfile.TemporaryDirectory() as folder:
        cwd = Path(folder)
        env = {key: value for key, value in os.environ.items() if key not in ("LOG_LEVEL", "PYTHONPROFILEIMPORTTIME")}
        env["DATABASE_URL"] = f"sqlite://{cwd / 'milestones.db'}"
        for setup in (["migrate"], ["demo"]):
            subprocess.run([MILESTONES, *setup], cwd=cwd, env=env, stdout=subprocess.DEVNULL, check=True)
        compiled = all(
            _compiled(source)
            for package in ("core", "bot", "integrations")
            for source in (ROOT / package).rglob("*.py")
        )
        as_set_up = (
            "as set up (the README's compileall done)"
            if compiled
            else "as this environment runs it (some of the project's bytecode missing or older than its source)"
        )
        variants = {as_set_up: env}
        if env.get("PYTHONDONTWRITEBYTECODE"):
            cached = {key: value for key, value in env.items() if key != "PYTHONDONTWRITEBYTECODE"}
            cached["PYTHONPYCACHEPREFIX"] = str(cwd / "bytecode")
            for command, status in COMMANDS.values():
                timed(command, status, cwd, cached)
            variants["with bytecode cached"] = cached
        times: dict[tuple[str, str], list[tuple[float, float]]] = {
            (variant, name): [] for variant in variants for name in COMMANDS
        }
        for _ in range(args.runs):
            for variant, variant_env in variants.items():
                for name, (command, status) in COMMANDS.items():
                    times[variant, name].append(timed(command, status, cwd, variant_env))
        counts = (
            {name: instructions(command, status, cwd, env) for name, (command, status) in COMMANDS.items()}
            if args.instructions
            else {}
        )

    load = os.getloadavg()
    print(
        f"{args.runs} interleaved rounds; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores"
    )
    for variant in variants:
        print(f"{variant}:")
        reference = statistics.median(wall for wall, _ in times[variant, REFERENCE])
        reference_cpu = statistics.median(cpu for _, cpu in times[variant, REFERENCE])
        for name in COMMANDS:
            walls = [wall for wall, _ in times[variant, name]]
            median, cpu = statistics.median(walls), statistics.median(cpu for _, cpu in times[variant, name])
            ratio = median / reference
            print(
                f"  {name:42} median {median * 1000:5.0f} ms  min {min(walls) * 1000:5.0f} ms  {ratio:4.2f}x{_goal(name, ratio)}"
                f"  CPU {cpu * 1000:4.0f} ms, {cpu / reference_cpu:4.2f}x"
            )
    if counts:
        print(f"instructions executed, {as_set_up.split(' (')[0]} (callgrind, one run each):")
        for name, count in counts.items():
            ratio = count / counts[REFERENCE]
            print(f"  {name:42} {count / 1e6:7.0f} million  {ratio:4.2f}x{_goal(name, ratio)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

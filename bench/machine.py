"""The machine a benchmark ran on: CPU model, cores, memory, OS, Python and key packages."""

from __future__ import annotations

import os
import platform
import shlex
import sys
from importlib import metadata


def cpu_model() -> str:
    """Return the CPU model name from /proc/cpuinfo, else what platform reports."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cores() -> int:
    """Return how many cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def memory_gib() -> float | None:
    """Return total memory in GiB from /proc/meminfo, or None where it cannot be read."""
    try:
        with open("/proc/meminfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / (1024 * 1024)
    except (OSError, ValueError):
        pass
    return None


def package_versions(names: list[str]) -> str:
    """Return 'name version' for each installed distribution among names."""
    found = []
    for name in names:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return ", ".join(found)


def describe(packages: list[str] | None = None) -> str:
    """Return a one-line machine description for a benchmark table."""
    mem = memory_gib()
    parts = [
        f"CPU: {cpu_model()}",
        f"{usable_cores()} cores (of {os.cpu_count()})",
        f"{mem:.0f} GiB RAM" if mem is not None else "",
        f"{platform.system()} {platform.release()}",
        f"Python {platform.python_version()} ({platform.python_implementation()})",
    ]
    if packages:
        versions = package_versions(packages)
        if versions:
            parts.append(versions)
    return "; ".join(p for p in parts if p)


def command_line(module: str) -> str:
    """Return the command that reruns this benchmark module with this process's arguments."""
    return " ".join(["python -m", module, *(shlex.quote(a) for a in sys.argv[1:])])


if __name__ == "__main__":
    print(describe(["pedrollm", "requests", "openai", "httpx", "ollama"]))

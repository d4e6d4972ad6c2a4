"""Count this process's TCP sockets connected to a port, from /proc (Linux only)."""

from __future__ import annotations

import os
from pathlib import Path

PROC_FD = Path("/proc/self/fd")


def proc_available() -> bool:
    """True when /proc exposes this process's descriptors and TCP table."""
    return PROC_FD.is_dir() and Path("/proc/net/tcp").is_file()


def open_sockets() -> int:
    """Return how many sockets (of any kind) this process holds open."""
    return len(_socket_inodes())


def _socket_inodes() -> set[str]:
    """Return the inodes of every socket this process holds open."""
    inodes: set[str] = set()
    for entry in os.listdir(PROC_FD):
        try:
            target = os.readlink(PROC_FD / entry)
        except OSError:
            continue  # closed between listdir and readlink
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    return inodes


def client_sockets_to(port: int) -> int:
    """Return how many of this process's sockets are connected to ``port`` as a client."""
    mine = _socket_inodes()
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            local_port = int(cols[1].rsplit(":", 1)[1], 16)
            remote_port = int(cols[2].rsplit(":", 1)[1], 16)
            if remote_port == port and local_port != port and cols[9] in mine:
                count += 1
    return count


def listening_addresses(port: int) -> set[str]:
    """Return the local IPv4 addresses on which a socket listens on ``port``."""
    found: set[str] = set()
    try:
        lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return found
    for line in lines:
        cols = line.split()
        address, _, port_hex = cols[1].partition(":")
        if int(port_hex, 16) == port and cols[3] == "0A":  # 0A: LISTEN
            octets = bytes.fromhex(address)[::-1]  # stored little-endian
            found.add(".".join(str(b) for b in octets))
    return found

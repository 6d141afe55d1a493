"""What one TCP ``send`` of a tick frame costs the sender on this machine (loopback).

The hub writes one frame per viewer per tick (livecommerce/realtime/hub.py, ``_deliver``), so
this is the floor of its server CPU per delivered frame in bench/fanout.py: on loopback the
sender's syscall also runs the receiver's TCP input (and the ACKs coming back).

``python -m bench.loopback_send [BYTES] [--no-read]``: 1,000 connected sockets, a child
process holding the other ends (reading them through epoll, or with ``--no-read`` never
reading: no receiver wake-up), one ``send`` of BYTES to every socket every 200 ms for 6 s.
Prints the sender's user and system CPU per send (``getrusage``).
"""

from __future__ import annotations

import os
import resource
import select
import socket
import sys
import time

SOCKETS = 1000


def _receiver(port: int, read: bool) -> None:
    conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(SOCKETS)]
    poll = select.epoll()
    by_fd = {}
    for conn in conns:
        conn.setblocking(False)
        poll.register(conn.fileno(), select.EPOLLIN)
        by_fd[conn.fileno()] = conn
    buf = bytearray(262144)
    end = time.time() + 12
    while time.time() < end:
        if not read:
            time.sleep(0.1)
            continue
        for fd, _events in poll.poll(0.1):
            try:
                by_fd[fd].recv_into(buf)
            except BlockingIOError:
                pass
    os._exit(0)


def main(size: int, read: bool) -> dict:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4096)
    port = listener.getsockname()[1]
    if os.fork() == 0:
        _receiver(port, read)
    socks = []
    for _ in range(SOCKETS):
        sock, _addr = listener.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as uvloop sets it
        sock.setblocking(False)
        socks.append(sock)
    data = b"x" * size
    time.sleep(0.5)
    before = resource.getrusage(resource.RUSAGE_SELF)
    sent = 0
    stop = time.time() + 6
    while time.time() < stop:
        for sock in socks:
            try:
                sock.send(data)
                sent += 1
            except BlockingIOError:
                pass
        time.sleep(0.2)
    after = resource.getrusage(resource.RUSAGE_SELF)
    os.wait()
    user = after.ru_utime - before.ru_utime
    system = after.ru_stime - before.ru_stime
    return {
        "bytes": size,
        "receiver_reads": read,
        "sends": sent,
        "user_us_per_send": round(1e6 * user / sent, 2),
        "system_us_per_send": round(1e6 * system / sent, 2),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    print(main(int(args[0]) if args else 18000, "--no-read" not in sys.argv))

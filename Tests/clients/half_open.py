"""Holds COUNT connections to 127.0.0.1:PORT that have sent half a request head (slowloris).

Usage: python3 half_open.py PORT COUNT [TIMEOUT]
The connections come from ten loopback addresses (127.0.0.2-11) in turn. Prints "open N" once
all are open, then "closed K of N after S s" when the server has closed all of them, or when
TIMEOUT seconds (default 30) pass. A separate process, so that the test process never holds
thousands of descriptors (Foundation's Process.run, used by other tests, crashed beside them).
"""
import resource
import select
import socket
import sys
import time

port, count = int(sys.argv[1]), int(sys.argv[2])
timeout = float(sys.argv[3]) if len(sys.argv) > 3 else 30.0
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, count + 100)), hard))
head = b"POST /v1/plan HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
sockets = []
for index in range(count):
    s = socket.socket()
    s.bind((f"127.0.0.{2 + index % 10}", 0))
    s.connect(("127.0.0.1", port))
    s.send(head)
    s.setblocking(False)
    sockets.append(s)
print(f"open {len(sockets)}", flush=True)
start = time.time()
open_ = {s.fileno(): s for s in sockets}
poller = select.poll()
for fd in open_:
    poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
while open_ and time.time() - start < timeout:
    for fd, _ in poller.poll(100):
        s = open_.get(fd)
        if s is None:
            continue
        try:
            data = s.recv(1)
        except BlockingIOError:
            continue
        except OSError:
            data = b""
        if not data:
            poller.unregister(fd)
            del open_[fd]
print(f"closed {count - len(open_)} of {count} after {time.time() - start:.1f} s", flush=True)

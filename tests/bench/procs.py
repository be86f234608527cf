"""What the benchmark scripts share: free loopback ports, a process's descendants
and their CPU time from /proc, and stopping a process by its PID."""

import os
import signal
import socket
import subprocess

TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children(pid):
    """Children of every thread of pid (WebKit starts its processes from any)."""
    out = []
    try:
        for t in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, t)) as f:
                out += [int(c) for c in f.read().split()]
    except OSError:
        pass
    return out


def tree(pid):
    """pid and all its descendants."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children(p)
    return out


def cpu_secs(pids):
    """utime+stime of the processes, all their threads, in seconds."""
    t = 0
    for p in pids:
        try:
            with open("/proc/%d/stat" % p) as f:
                parts = f.read().rsplit(")", 1)[1].split()
            t += int(parts[11]) + int(parts[12])
        except OSError:
            pass
    return t / TICK


def stop(p, timeout=10):
    """SIGTERM, then SIGKILL if it has not exited within `timeout` seconds."""
    if p.poll() is not None:
        return
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()

"""The floor a plan over SSH is measured against: a bare paramiko connect, then one `tar` of
the files mailstate manages on the server, read to the end. Nothing else.

    python3 bench/peer.py ssh://root@HOST KEY KNOWN_HOSTS PATH...

Prints JSON: seconds for the imports, the connect and the read, and the bytes read.
"""

from __future__ import annotations

import json
import shlex
import sys
import time

START = time.perf_counter()


def main() -> None:
    import paramiko

    imported = time.perf_counter()
    target, key, known, *paths = sys.argv[1:]
    host = target.removeprefix("ssh://").split("@")[-1]
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.load_host_keys(known)
    client.connect(host, username="root", key_filename=key, allow_agent=False,
                   look_for_keys=False)
    connected = time.perf_counter()
    rel = " ".join(shlex.quote(p.lstrip("/")) for p in paths)
    _, stdout, _ = client.exec_command(f"cd / && tar -cf - --ignore-failed-read {rel}")
    data = stdout.read()
    stdout.channel.recv_exit_status()
    done = time.perf_counter()
    client.close()
    print(json.dumps({"imports": round(imported - START, 4),
                      "connect": round(connected - imported, 4),
                      "read": round(done - connected, 4), "bytes": len(data)}))


if __name__ == "__main__":
    main()

"""A process that writes to, reads from and acknowledges a spool until it is killed.

Prints ``PUT a b`` after ``put`` returned for ids a..b-1, ``TAKEN x,y,..`` after
``take``, ``ACKING n`` before ``ack(n)`` and ``ACKED`` after it returned, so that
the parent knows what was acknowledged when it sends SIGKILL at a random moment.
"""

from __future__ import annotations

import random
import sys

from aitel.exporters.base import EncodedPacket
from aitel.spool import DiskSpool


def payload(n: int) -> bytes:
    return b'{"packet_id":"p%d","pad":"%s"}' % (n, b"x" * (n % 97))


def main() -> None:
    directory, start, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rng = random.Random(seed)
    spool = DiskSpool(directory, max_bytes=1 << 30, segment_bytes=16 * 1024, adopt_interval_s=0.0)
    n = start
    while True:
        if rng.random() < 0.6:
            size = rng.randint(1, 40)
            batch = [EncodedPacket(f"p{i}", payload(i)) for i in range(n, n + size)]
            stored = spool.put(batch)
            print(f"PUT {n} {n + stored}", flush=True)
            n += size
        else:
            taken = spool.take(rng.randint(1, 60))
            if not taken:
                continue
            print("TAKEN " + ",".join(p.packet_id for p in taken), flush=True)
            count = rng.randint(1, len(taken)) if rng.random() < 0.3 else len(taken)
            print(f"ACKING {count}", flush=True)
            spool.ack(count)
            print("ACKED", flush=True)


if __name__ == "__main__":
    main()

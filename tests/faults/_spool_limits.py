"""Spooling into a full or read-only disk, through the tracer: nothing raises, all is counted.

``full``: the file-size limit (RLIMIT_FSIZE) makes writes fail with EFBIG part
way, like a disk that fills up; then the limit is lifted ("space returns").
``readonly``: run as a user who cannot write the spool directory.
Prints one JSON line with the counters.
"""

from __future__ import annotations

import json
import resource
import signal
import sys


def main() -> None:
    mode, directory, endpoint = sys.argv[1], sys.argv[2], sys.argv[3]
    import aitel
    from aitel.config import Settings
    from aitel.exporters.http import HttpExporter
    from aitel.exporters.retry import RetryPolicy
    from aitel.pipeline import PipelineConfig
    from aitel.spool import DiskSpool

    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    if mode == "full":  # every file the process writes stops growing at 64 kB
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, hard))

    spool = DiskSpool(directory, segment_bytes=1 << 20)
    tracer = aitel.Tracer(
        HttpExporter(endpoint, retry=RetryPolicy(max_elapsed_s=0.2), cooldown_s=5),
        spool=spool,
        settings=Settings(redaction=()),
        pipeline_config=PipelineConfig(schedule_delay_s=0.05, max_batch_size=50),
    )
    result: dict[str, object] = {}

    def emit(count: int) -> None:
        for n in range(count):
            with aitel.trace("work", input={"n": n, "pad": "p" * 500}, tracer=tracer):
                pass
        tracer.flush(10)

    emit(400)
    result["before"] = tracer.stats().as_dict()
    if mode == "full":
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        emit(100)
    result["after"] = tracer.stats().as_dict()
    stats = spool.stats()
    result["spool"] = {"stored": stats.stored, "write_errors": stats.write_errors}
    tracer.shutdown(2)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()

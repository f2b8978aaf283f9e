"""Download a model into LM Studio (0.4+) with a progress line, then ask it a question.

python examples/download_model.py                                   # the simulator
python examples/download_model.py --server http://localhost:1234 --model qwen/qwen3-4b-2507
"""

from __future__ import annotations

import sys
from typing import List, Optional

import _common

import lmstrix
from lmstrix.client import DownloadJob

SIMULATED = "lmstrix-demo/fresh-chat-2b"  # in the simulator's download catalog


def show(job: DownloadJob) -> None:
    """Rewrite one progress line on stderr: percent, speed, time left."""
    done = "?" if job.fraction is None else f"{job.fraction:.0%}"
    speed = "" if not job.bytes_per_second else f", {job.bytes_per_second / 1e6:.0f} MB/s"
    left = "" if job.eta_s is None else f", {job.eta_s:.0f} s left"
    print(f"\r{job.status} {done}{speed}{left}    ", end="", file=sys.stderr, flush=True)


def main(argv: Optional[List[str]] = None) -> int:
    """Download ``--model`` (a catalog id or Hugging Face URL), follow it, then use it."""
    args = _common.parser("Download a model and follow its progress.").parse_args(argv)
    model = args.model or SIMULATED
    try:
        with _common.connect(args) as client:
            job = client.download(model)
            print(f"download of {model}: {job.status}")
            # Ctrl-C here stops following only: LM Studio carries on downloading.
            final = client.wait_for_download(job, on_progress=show, poll_s=0.05)
            print(file=sys.stderr)
            size = "?" if final.total_size_bytes is None else f"{final.total_size_bytes:,}"
            print(f"{final.status}: {size} bytes")
            listed = model in [m.key for m in client.list_models()]
            print(f"listed by the server: {'yes' if listed else 'no'}")
            if listed:  # a Hugging Face URL is listed under its own key instead
                answer = client.chat(model, "What is 2+3? Reply with the number only.")
                print(f"answer: {answer.text.strip()}")
            again = client.download(model)
            print(f"asked again: {again.status}")
    except lmstrix.LMStrixError as exc:
        return _common.fail(exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())

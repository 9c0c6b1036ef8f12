"""Copy a trained model into hardmatch/models/ as a plain state_dict with its sha256 beside it.

    python tools/ship_model.py runs/v1/checkpoint.pth hardmatch/models/hardnet-synth.pth
"""

import hashlib
import sys
from pathlib import Path

import torch


def main(src: str, dst: str) -> None:
    state = torch.load(src, map_location="cpu", weights_only=True)
    if "state_dict" in state:
        state = state["state_dict"]
    state = {k: v.contiguous() for k, v in state.items()}
    out = Path(dst)
    torch.save(state, out)
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    out.with_suffix(".sha256").write_text(f"{digest}  {out.name}\n")
    print(f"{out}: {out.stat().st_size} bytes, sha256 {digest}")


if __name__ == "__main__":
    main(*sys.argv[1:3])

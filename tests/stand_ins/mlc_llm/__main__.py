"""`python -m mlc_llm <subcommand> ...`: record the call, write that step's outputs (see __init__)."""

import json
import os
import shutil
import sys
from pathlib import Path

WASM_MAGIC = b"\0asm\x01\0\0\0"


def option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def main(args: list[str]) -> int:
    with open(os.environ["MLC_STAND_IN_LOG"], "a") as log:
        log.write(json.dumps(args) + "\n")
    command = args[0]
    if os.environ.get("MLC_STAND_IN_FAIL") == command:
        print(f"stand-in: {command} started", flush=True)
        print(f"ValueError: {command} cannot handle this model", file=sys.stderr)
        return 1
    if command == "convert_weight":
        out = Path(option(args, "-o"))
        out.mkdir(parents=True, exist_ok=True)
        (out / "params_shard_0.bin").write_bytes(b"\0" * 64)
        records = [{"dataPath": "params_shard_0.bin", "format": "raw-shard", "nbytes": 64,
                    "records": [{"name": "w", "shape": [16], "dtype": "float32", "format": "raw",
                                 "nbytes": 64, "byteOffset": 0}]}]
        (out / "tensor-cache.json").write_text(json.dumps({"metadata": {}, "records": records}))
    elif command == "gen_config":
        out = Path(option(args, "-o"))
        shutil.copyfile(Path(args[1]) / "tokenizer.json", out / "tokenizer.json")
        config = {"model_type": "llama", "quantization": option(args, "--quantization"),
                  "conv_template": {"name": option(args, "--conv-template")}, "tokenizer_files": ["tokenizer.json"]}
        (out / "mlc-chat-config.json").write_text(json.dumps(config))
    elif command == "compile":
        Path(option(args, "-o")).write_bytes(WASM_MAGIC)
    return 0


sys.exit(main(sys.argv[1:]))

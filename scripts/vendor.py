#!/usr/bin/env python3
"""Copy the pinned front-end packages from node_modules/ into static/vendor/ (generated, never committed).

Run by scripts/setup after `npm ci`. The page loads these files from our own origin, so Hearth
works air-gapped: nothing comes from a CDN at run time.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NODE_MODULES = ROOT / "node_modules"
VENDOR = ROOT / "static" / "vendor"

# package -> (file inside the package, name under static/vendor/)
FILES: dict[str, tuple[tuple[str, str], ...]] = {
    "@mlc-ai/web-llm": (("lib/index.js", "web-llm/index.js"),),
    "htmx.org": (("dist/htmx.min.js", "htmx.min.js"),),
    "marked": (("lib/marked.esm.js", "marked.esm.js"),),
    "dompurify": (("dist/purify.es.mjs", "purify.es.mjs"),),
    # The browser build (an ES module with the common languages); the `highlight.js` package itself
    # is CommonJS. Two themes made for WCAG AA contrast, one per colour scheme (static/css/markdown.css).
    "@highlightjs/cdn-assets": (
        ("es/highlight.min.js", "highlight/highlight.min.js"),
        ("styles/a11y-light.min.css", "highlight/a11y-light.min.css"),
        ("styles/a11y-dark.min.css", "highlight/a11y-dark.min.css"),
    ),
}
LICENSE_NAMES = ("LICENSE", "LICENSE.md", "LICENSE.txt")


def vendor(node_modules: Path = NODE_MODULES, target: Path = VENDOR) -> dict[str, str]:
    """Copy every file in FILES plus each package's licence; return package -> version."""
    versions: dict[str, str] = {}
    staging = Path(tempfile.mkdtemp(prefix=".vendor-", dir=target.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; these files are served to anyone
    try:
        for package, files in FILES.items():
            package_dir = node_modules / package
            manifest = package_dir / "package.json"
            if not manifest.is_file():
                raise SystemExit(f"vendor: {package} is not in {node_modules}; run `npm ci` first")
            versions[package] = json.loads(manifest.read_text())["version"]
            for source, name in files:
                _copy(package_dir / source, staging / name)
            licence = next((package_dir / n for n in LICENSE_NAMES if (package_dir / n).is_file()), None)
            if licence is not None:
                _copy(licence, staging / "LICENSES" / f"{package.lstrip('@').replace('/', '-')}.txt")
        (staging / "versions.json").write_text(json.dumps(versions, indent=2) + "\n")
        # Swap the whole folder at once: a page never sees a half-copied vendor/.
        old = target.with_name(".vendor-old")
        shutil.rmtree(old, ignore_errors=True)
        if target.exists():
            target.rename(old)
        staging.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return versions


def _copy(source: Path, destination: Path) -> None:
    if not source.is_file():
        raise SystemExit(f"vendor: {source} is missing; the package layout changed, update scripts/vendor.py")
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, destination)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    versions = vendor()
    print("vendored " + ", ".join(f"{name}@{version}" for name, version in versions.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

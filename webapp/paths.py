"""Where Hearth's own files are: one root for templates and static files, in a checkout or a wheel."""

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def _front_end_root() -> Path:
    # A wheel carries static/ and templates/ inside the package; a checkout keeps them beside it.
    if (PACKAGE_DIR / "templates").is_dir():
        return PACKAGE_DIR
    return PACKAGE_DIR.parent


FRONT_END_ROOT = _front_end_root()
STATIC_DIR = FRONT_END_ROOT / "static"
TEMPLATES_DIR = FRONT_END_ROOT / "templates"
VENDOR_DIR = STATIC_DIR / "vendor"

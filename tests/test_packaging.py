"""A built wheel is a complete Hearth: templates, static files and the vendored front end inside."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHECK_INSTALLED = """
from pathlib import Path
import webapp.paths as paths
from starlette.testclient import TestClient
from webapp.app import create_app
from webapp.settings import Settings
assert str(paths.STATIC_DIR).startswith({site!r}), paths.STATIC_DIR
client = TestClient(create_app(Settings(models_dir_override=Path({models!r}))))
for url in ("/", "/library", "/static/vendor/web-llm/index.js", "/static/vendor/htmx.min.js", "/sw.js"):
    assert client.get(url).status_code == 200, url
print("installed wheel serves the app")
"""


def test_wheel_carries_the_front_end_and_serves_it(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(ROOT)],
                   check=True, capture_output=True)
    [wheel] = tmp_path.glob("hearth-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in ("webapp/static/vendor/web-llm/index.js", "webapp/static/vendor/purify.es.mjs",
                     "webapp/static/vendor/marked.esm.js", "webapp/static/vendor/htmx.min.js",
                     "webapp/templates/base.html", "webapp/static/js/sw.js", "webapp/app.py"):
        assert expected in names, expected
    assert not any(name.endswith(".hearth-stamp") for name in names)

    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
                   check=True, capture_output=True)
    # Run outside the checkout, with the installed copy first on the path, so the checkout cannot answer.
    script = CHECK_INSTALLED.format(site=str(site), models=str(tmp_path / "models"))
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env={"PYTHONPATH": str(site)},
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "installed wheel serves the app" in result.stdout

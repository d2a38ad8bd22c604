"""Ready configurations for serving a models directory at scale: nginx, Caddy, an S3 bucket, CloudFront.

nginx and Caddy stand in front of `hearth host --accel-redirect`: Hearth keeps answering what needs the
manifest (the Hub API, HEAD, content-hash ETags, X-Repo-Commit, which revision is immutable) and hands
each GET body to the server with X-Accel-Redirect, which sends it with sendfile and Range support.
A bucket cannot answer the Hub API; its CORS rules let any page's WebLLM fetch the files.
"""

from __future__ import annotations

import json
from pathlib import Path

from webapp.headers import EXPOSED_HEADERS
from webapp.headers import PREFLIGHT_HEADERS as PREFLIGHT

# The internal prefix under which nginx / Caddy serve the files Hearth names.
ACCEL_PREFIX = "/_hearth_files/"
KINDS = ("nginx", "caddy", "s3-cors", "cloudfront")
# Headers Hearth computes per file, which the front server must pass on with the body.
FILE_HEADERS = ("ETag", "X-Repo-Commit", "X-Linked-Etag", "X-Linked-Size", "Cache-Control")


def render(kind: str, models_dir: Path, listen: str, upstream: str, allow_origin: str = "*") -> str:
    """The configuration of one kind, for this directory, front address and Hearth address."""
    if kind == "nginx":
        return nginx(models_dir, listen, upstream, allow_origin)
    if kind == "caddy":
        return caddy(models_dir, listen, upstream, allow_origin)
    if kind == "s3-cors":
        return json.dumps(s3_cors(allow_origin), indent=2) + "\n"
    if kind == "cloudfront":
        return json.dumps(cloudfront_response_headers(allow_origin), indent=2) + "\n"
    raise ValueError(f"unknown kind {kind!r}: one of {', '.join(KINDS)}")


def _cors_lines(allow_origin: str, indent: str) -> str:
    headers = {
        "Access-Control-Allow-Origin": allow_origin,
        "Access-Control-Expose-Headers": ", ".join(EXPOSED_HEADERS),
        "Cross-Origin-Resource-Policy": "cross-origin",
        "X-Content-Type-Options": "nosniff",
    }
    return "\n".join(f'{indent}add_header {name} "{value}" always;' for name, value in headers.items())


def nginx(models_dir: Path, listen: str, upstream: str, allow_origin: str = "*") -> str:
    """An nginx.conf: Hearth behind for the API and headers, nginx sending the bytes."""
    root = models_dir.resolve()
    cors = _cors_lines(allow_origin, "            ")
    preflight = "\n".join(f'            add_header {k} "{v}" always;' for k, v in PREFLIGHT.items())
    # nginx passes the upstream's Cache-Control on an X-Accel-Redirect by itself, but not the rest.
    passed = "\n".join(f"            add_header {name} $upstream_http_{name.lower().replace('-', '_')} always;"
                       for name in FILE_HEADERS if name != "Cache-Control")
    return f"""# nginx in front of `hearth host --port {upstream.rsplit(':', 1)[-1]} --accel-redirect {ACCEL_PREFIX} {root}`.
# Hearth answers /models/api/*, HEAD and the headers; nginx sends every GET body from {root}.
# Run: nginx -c <this file> (or include its http block); reload after editing.
worker_processes auto;
events {{ worker_connections 1024; }}
http {{
    sendfile on;
    tcp_nopush on;
    sendfile_max_chunk 2m;
    gzip off;  # never compress weights; the JSON is small
    server_tokens off;
    types {{
        application/wasm wasm;
        application/json json;
        application/octet-stream bin;
    }}
    default_type application/octet-stream;
    access_log off;

    upstream hearth {{ server {upstream}; keepalive 16; }}

    server {{
        listen {listen};

        location /models/ {{
            if ($request_method = OPTIONS) {{
{cors}
{preflight}
                return 204;
            }}
            proxy_pass http://hearth;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header Accept-Encoding "";
        }}

        # Libraries outside any model tree: plain static files.
        location /libs/ {{
            alias {root}/libs/;
{cors}
            add_header Cache-Control "no-cache" always;
        }}

        # Only reachable through Hearth's X-Accel-Redirect, never by a client.
        location {ACCEL_PREFIX} {{
            internal;
            alias {root}/;
            etag off;  # nginx's ETag is mtime+size; Hearth's (passed on below) names the bytes
{cors}
{passed}
        }}
    }}
}}
"""


def caddy(models_dir: Path, listen: str, upstream: str, allow_origin: str = "*") -> str:
    """A Caddyfile doing what the nginx configuration does."""
    root = models_dir.resolve()
    headers = {
        "Access-Control-Allow-Origin": allow_origin,
        "Access-Control-Expose-Headers": ", ".join(EXPOSED_HEADERS),
        "Cross-Origin-Resource-Policy": "cross-origin",
        "X-Content-Type-Options": "nosniff",
    }
    cors = "\n".join(f'\t\t{name} "{value}"' for name, value in headers.items())
    preflight = "\n".join(f'\t\t\t{name} "{value}"' for name, value in PREFLIGHT.items())
    # Caddy 2.6 looks placeholders up by Go's canonical header name (Etag, not ETag).
    passed = "\n".join(f'\t\t\t\t\t{name} "{{http.reverse_proxy.header.{_canonical(name)}}}"' for name in FILE_HEADERS)
    return f"""# Caddy in front of `hearth host --port {upstream.rsplit(':', 1)[-1]} --accel-redirect {ACCEL_PREFIX} {root}`.
# Run: caddy run --config <this file> --adapter caddyfile
{{
\tadmin off
\tauto_https off
}}

http://{listen} {{
\theader {{
{cors}
\t\t-Server
\t}}
\t@preflight method OPTIONS
\t@shard path *.bin
\thandle @preflight {{
\t\theader {{
{preflight}
\t\t}}
\t\trespond 204
\t}}
\thandle /libs/* {{
\t\troot * {root}
\t\theader Cache-Control "no-cache"
\t\tfile_server
\t}}
\thandle {{
\t\treverse_proxy {upstream} {{
\t\t\theader_up -Accept-Encoding
\t\t\t@accel header X-Accel-Redirect *
\t\t\thandle_response @accel {{
\t\t\t\troot * {root}
\t\t\t\trewrite * {{http.reverse_proxy.header.X-Accel-Redirect}}
\t\t\t\turi strip_prefix {ACCEL_PREFIX.rstrip('/')}
\t\t\t\theader {{
\t\t\t\t\tdefer  # applied as the response is written, so file_server's mtime+size ETag loses
{passed}
\t\t\t\t}}
\t\t\t\theader @shard {{
\t\t\t\t\tdefer  # Go knows no type for .bin
\t\t\t\t\tContent-Type application/octet-stream
\t\t\t\t}}
\t\t\t\tfile_server
\t\t\t}}
\t\t}}
\t}}
}}
"""


def _canonical(name: str) -> str:
    return "-".join(part.capitalize() for part in name.split("-"))


def s3_cors(allow_origin: str = "*") -> dict[str, object]:
    """The bucket's CORS rules (aws s3api put-bucket-cors --cors-configuration file://this.json)."""
    return {"CORSRules": [{
        "AllowedOrigins": [allow_origin],
        "AllowedMethods": ["GET", "HEAD"],
        "AllowedHeaders": ["Range", "If-None-Match", "If-Modified-Since"],
        "ExposeHeaders": ["ETag", "Content-Length", "Content-Range", "Accept-Ranges"],
        "MaxAgeSeconds": 86400,
    }]}


def cloudfront_response_headers(allow_origin: str = "*") -> dict[str, object]:
    """A CloudFront response headers policy (aws cloudfront create-response-headers-policy)."""
    return {"ResponseHeadersPolicyConfig": {
        "Name": "hearth-model-files",
        "Comment": "CORS and CORP for WebLLM model files; cache .bin uncompressed, forward Origin.",
        "CorsConfig": {
            "AccessControlAllowOrigins": {"Quantity": 1, "Items": [allow_origin]},
            "AccessControlAllowHeaders": {"Quantity": 3, "Items": ["Range", "If-None-Match", "If-Modified-Since"]},
            "AccessControlAllowMethods": {"Quantity": 3, "Items": ["GET", "HEAD", "OPTIONS"]},
            "AccessControlExposeHeaders": {"Quantity": len(EXPOSED_HEADERS), "Items": list(EXPOSED_HEADERS)},
            "AccessControlAllowCredentials": False,
            "AccessControlMaxAgeSec": 86400,
            "OriginOverride": True,
        },
        "CustomHeadersConfig": {"Quantity": 1, "Items": [
            {"Header": "Cross-Origin-Resource-Policy", "Value": "cross-origin", "Override": True}]},
    }}

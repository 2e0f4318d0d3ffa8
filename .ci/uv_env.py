"""Prints ``export UV_...=...`` lines that give uv the package sources and constraints pip is configured with.

CI installs with uv when it can (the same environment; 412 s against pip's 1057 s on the two-core CI
machine, measured one after the other beside the same background load), and uv does not read pip's configuration files or ``PIP_*``
variables. Standard library only; it asks pip itself (``pip config list``), so machine policy such as
a global constraints file holds for uv too.
"""

import shlex
import subprocess
import sys

# pip option -> (uv variable, separator uv expects between several values)
OPTIONS = {
    "index-url": ("UV_INDEX_URL", " "),
    "extra-index-url": ("UV_EXTRA_INDEX_URL", " "),
    "find-links": ("UV_FIND_LINKS", ","),
    "constraint": ("PIP_CONFIG_CONSTRAINTS", " "),  # .ci/run passes them as -c: uv's own variable yields to -c
    "cert": ("SSL_CERT_FILE", " "),
}

listing = subprocess.run(
    [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, check=False
).stdout
values: dict[str, str] = {}
for line in listing.splitlines():
    key, _, value = line.partition("=")
    scope, _, option = key.rpartition(".")
    if option in OPTIONS and value:
        # environment variables (":env:") override the configuration files, as in pip
        if scope == ":env:" or option not in values:
            values[option] = value.strip("'\"")
for option, value in values.items():
    variable, separator = OPTIONS[option]
    print(f"export {variable}={shlex.quote(separator.join(value.split()))}")
# pip takes the best version over all indexes; uv by default stops at the first index that has the package
print("export UV_INDEX_STRATEGY=unsafe-best-match")

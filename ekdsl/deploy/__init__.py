"""Shipping a plugin: its requirements, install.sh, offline wheel bundles, and eKuiper's REST API.

Used at export and deploy time only: a plugin package does not carry this sub-package.
"""

DEFAULT_SERVER = "http://127.0.0.1:9081"  # eKuiper's REST API (basic.restPort)
DEFAULT_MAX_ANSWER = 16 << 20  # bytes of an answer read; eKuiper's answers are a few KiB

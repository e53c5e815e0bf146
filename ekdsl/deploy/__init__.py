"""Shipping a plugin: its requirements, install.sh, offline wheel bundles, and eKuiper's REST API.

Used at export and deploy time only: a plugin package does not carry this sub-package.
"""

"""A plugin's ``@function``\\ s served to eKuiper as external services (REST or msgpack-rpc).

:mod:`.schema` maps signatures to proto3, :mod:`.export` writes what ``POST /services`` registers,
:mod:`.rest` and :mod:`.msgpack_rpc` are the wire adapters over :mod:`ekdsl.invoke`, :mod:`.serve` runs them.
Nothing here is imported by the plugin runtime.
"""

"""Names the eKuiper host takes over: reserved property names and built-in symbol names.

Everything here is data read from eKuiper's Go source at commit ``0014e7fab0dd`` (each entry names
its file). eKuiper decodes property maps with ``cast.MapToStruct`` (mapstructure: keys match struct
tags case-insensitively), so lookups here ignore case; built-in function names are lower-cased as
``internal/binder/function/function.go ConvName`` does, source and sink types match exactly.
"""

from __future__ import annotations

from typing import Dict, FrozenSet, NamedTuple, Optional, Tuple

from .kinds import Kind

__all__ = [
    "BUILTIN_FUNCTIONS",
    "BUILTIN_LOOKUP_SOURCES",
    "BUILTIN_SINKS",
    "BUILTIN_SOURCES",
    "EKUIPER_COMMIT",
    "OPTIONAL_SINKS",
    "OPTIONAL_SOURCES",
    "SINK_PROPERTIES",
    "SOURCE_PROPERTIES",
    "Reserved",
    "builtin_symbol",
    "reserved_property",
]

EKUIPER_COMMIT = "0014e7fab0dd"


class Reserved(NamedTuple):
    """A property name eKuiper acts on itself; ``go`` is where, ``effect`` what it does."""

    name: str
    go: str
    effect: str
    gotype: str = "string"  # what the value must decode to: string int bool duration strings map


_SPLIT = "internal/topo/planner/planner_source.go SourcePropsForSplit"
_CONF = "internal/topo/node/conf/source.go GetSourceConf"
_SINKCONF = "internal/topo/node/props.go SinkConf"
_CACHE = "pkg/model/conf.go SinkConf"

SOURCE_PROPERTIES: Dict[str, Reserved] = {r.name.lower(): r for r in (
    # internal/topo/planner/planner_source.go: SourcePropsForSplit, decoded from every stream's props
    Reserved("interval", _SPLIT, "a value of 1 ms or more makes eKuiper insert a rate limiter that keeps only "
             "the latest row per interval (internal/topo/node/rate_limit.go); numbers are milliseconds",
             "duration"),
    Reserved("decompression", _SPLIT, "eKuiper decompresses the payload with it"),
    Reserved("connectionSelector", _SPLIT, "eKuiper replaces the props with a shared connection's"),
    Reserved("payloadFormat", _SPLIT, "eKuiper adds a payload decoder"),
    Reserved("mergeField", _SPLIT, "eKuiper merges rows in its rate limiter"),
    Reserved("merger", _SPLIT, "eKuiper merges rows in its rate limiter"),
    # internal/topo/node/conf/source.go: GetSourceConf overwrites these with the stream's own options
    Reserved("format", _CONF, "overwritten with the stream's FORMAT"),
    Reserved("key", _CONF, "overwritten with the stream's KEY"),
    Reserved("datasource", _CONF, "overwritten with the stream's DATASOURCE"),
    Reserved("schemaId", _CONF, "overwritten with the stream's SCHEMAID"),
    Reserved("delimiter", _CONF, "overwritten with the stream's DELIMITER"),
    Reserved("retainSize", _CONF, "overwritten with the stream's RETAIN_SIZE", "int"),
    Reserved("strictValidation", _CONF, "overwritten with the stream's STRICT_VALIDATION", "bool"),
    Reserved("timestamp", _CONF, "overwritten with the stream's TIMESTAMP"),
    Reserved("timestampFormat", _CONF, "overwritten with the stream's TIMESTAMP_FORMAT"),
)}
"""Source property names, lower-cased → :class:`Reserved`."""

SINK_PROPERTIES: Dict[str, Reserved] = {r.name.lower(): r for r in (
    # internal/topo/node/props.go: ParseConf decodes every action's props into SinkConf
    Reserved("concurrency", _SINKCONF, "eKuiper runs that many sink instances", "int"),
    Reserved("omitIfEmpty", _SINKCONF, "eKuiper drops empty results", "bool"),
    Reserved("sendSingle", _SINKCONF, "eKuiper sends rows one by one", "bool"),
    Reserved("dataTemplate", _SINKCONF, "eKuiper renders the payload with it"),
    Reserved("format", _SINKCONF, "eKuiper encodes the payload with it"),
    Reserved("schemaId", _SINKCONF, "eKuiper encodes the payload with that schema"),
    Reserved("delimiter", _SINKCONF, "eKuiper's delimited encoder uses it"),
    Reserved("bufferLength", _SINKCONF, "eKuiper sizes the sink's buffer", "int"),
    Reserved("fields", _SINKCONF, "eKuiper keeps only these fields", "strings"),
    Reserved("excludeFields", _SINKCONF, "eKuiper removes these fields", "strings"),
    Reserved("dataField", _SINKCONF, "eKuiper sends only this field"),
    Reserved("batchSize", _SINKCONF, "eKuiper batches rows", "int"),
    Reserved("lingerInterval", _SINKCONF, "eKuiper batches rows over time", "duration"),
    Reserved("compression", _SINKCONF, "eKuiper compresses the payload before the plugin gets it"),
    Reserved("compressionProps", _SINKCONF, "eKuiper's compressor reads it", "map"),
    Reserved("encryption", _SINKCONF, "eKuiper encrypts the payload before the plugin gets it"),
    Reserved("encProps", _SINKCONF, "eKuiper's encryptor reads it", "map"),
    Reserved("hasHeader", _SINKCONF, "eKuiper's delimited encoder writes a header", "bool"),
    # pkg/model/conf.go: SinkConf, the cache settings, decoded by the same ParseConf
    Reserved("memoryCacheThreshold", _CACHE, "eKuiper's sink cache setting", "int"),
    Reserved("maxDiskCache", _CACHE, "eKuiper's sink cache setting", "int"),
    Reserved("bufferPageSize", _CACHE, "eKuiper's sink cache setting", "int"),
    Reserved("enableCache", _CACHE, "eKuiper caches and resends failed payloads", "bool"),
    Reserved("resendInterval", _CACHE, "eKuiper's sink cache setting", "duration"),
    Reserved("cleanCacheAtStop", _CACHE, "eKuiper's sink cache setting", "bool"),
    Reserved("resendAlterQueue", _CACHE, "eKuiper's sink cache setting", "bool"),
    Reserved("resendPriority", _CACHE, "eKuiper's sink cache setting", "int"),
    Reserved("resendIndicatorField", _CACHE, "eKuiper's sink cache setting"),
    Reserved("resendDestination", _CACHE, "eKuiper's sink cache setting"),
    # internal/topo/node/props.go ParseConf: used as dataField when that is empty (exact key)
    Reserved("tableDataField", "internal/topo/node/props.go ParseConf", "eKuiper sends only this field"),
    # internal/topo/node/conf/conn.go OverwriteByConnectionConf (ConnectionSelector in conf/sink.go)
    Reserved("connectionSelector", "internal/topo/node/conf/conn.go OverwriteByConnectionConf",
             "eKuiper replaces the props with a shared connection's"),
    # internal/plugin/portable/runtime/sink.go Provision: the portable sink's own setting
    Reserved("requireAck", "internal/plugin/portable/runtime/sink.go sinkConf",
             "eKuiper waits for the plugin's ack of every payload", "bool"),
)}
"""Sink property names, lower-cased → :class:`Reserved`. (``sendError`` is a rule option,
``internal/pkg/def/rule.go RuleOption``, not read from a sink's props.)"""

# internal/binder/function/funcs_*.go: every key of `builtins` and `builtinStatfulFuncs` (192 names).
# function.go looks these up before any plugin (binder.go: the built-in factory is registered first).
BUILTIN_FUNCTIONS: FrozenSet[str] = frozenset((
    "abs", "acc_avg", "acc_count", "acc_max", "acc_min", "acc_sum", "acos", "array_cardinality",
    "array_concat", "array_contains", "array_contains_any", "array_create", "array_distinct", "array_except",
    "array_flatten", "array_intersect", "array_join", "array_last_position", "array_map", "array_max",
    "array_min", "array_position", "array_remove", "array_shuffle", "array_sort", "array_union", "asin",
    "atan", "atan2", "avg", "bitand", "bitnot", "bitor", "bitxor", "bypass", "cardinality", "cast", "ceil",
    "ceiling", "changed_col", "changed_cols", "chr", "coalesce", "collect", "compress", "concat", "conv",
    "convert_tz", "cos", "cosh", "cot", "count", "crc32", "cur_date", "cur_time", "current_date",
    "current_time", "current_timestamp", "date_calc", "date_diff", "day", "day_name", "day_of_month",
    "day_of_week", "day_of_year", "dec2hex", "decode", "decompress", "deduplicate", "degrees", "delay",
    "element_at", "encode", "endswith", "erase", "event_time", "exp", "extract", "floor", "format",
    "format_time", "from_days", "from_unix_time", "get_keyed_state", "had_changed", "hex2dec", "hour",
    "inc_avg", "inc_collect", "inc_count", "inc_last_value", "inc_max", "inc_merge_agg", "inc_min", "inc_sum",
    "indexof", "isnull", "items", "json_path_exists", "json_path_query", "json_path_query_first", "keys",
    "kvpair_array_to_obj", "lag", "last_agg_hit_count", "last_agg_hit_time", "last_day", "last_hit_count",
    "last_hit_time", "last_value", "latest", "length", "ln", "local_time", "local_timestamp", "log", "lower",
    "lpad", "ltrim", "max", "md5", "median", "merge_agg", "meta", "microsecond", "min", "minute", "mod",
    "month", "month_name", "mqtt", "newuuid", "now", "numbytes", "obj_to_kvpair_array", "object",
    "object_concat", "object_construct", "object_pick", "object_size", "parse_json", "percentile_cont",
    "percentile_disc", "pi", "pow", "power", "props", "radians", "rand", "regexp_matches", "regexp_replace",
    "regexp_substr", "repeat", "reverse", "round", "row_number", "rpad", "rtrim", "rule_id", "rule_start",
    "second", "sequence", "sha1", "sha256", "sha384", "sha512", "sign", "sin", "sinh", "split_value", "sqrt",
    "startswith", "stddev", "stddevs", "substring", "sum", "tan", "tanh", "to_json", "to_seconds", "trim",
    "trunc", "tstamp", "unnest", "upper", "values", "var", "vars", "window_end", "window_start",
    "window_trigger", "zip",
))

# internal/binder/io/builtin.go (every build) and ext_redis.go (`redisdb || !core`: the default build).
# io/binder.go registers the built-in factory before any plugin factory.
BUILTIN_SOURCES: FrozenSet[str] = frozenset((
    "mqtt", "httppull", "httppush", "file", "memory", "neuron", "websocket", "simulator", "nexmark",
    "redisSub",
))
# the same files' RegisterLookupSource: sources a lookup table can use
BUILTIN_LOOKUP_SOURCES: FrozenSet[str] = frozenset(("memory", "httppull", "simulator", "redis"))
BUILTIN_SINKS: FrozenSet[str] = frozenset((
    "log", "logToMemory", "mqtt", "rest", "nop", "memory", "neuron", "file", "websocket", "sse",
    "redis", "redisPub",
))
# internal/binder/io/ext_full.go, ext_full_nowin.go (`full` builds) and ext_edgex.go (`edgex || full`).
OPTIONAL_SOURCES: FrozenSet[str] = frozenset(("video", "kafka", "sql", "zmq", "edgex"))
OPTIONAL_SINKS: FrozenSet[str] = frozenset(("kafka", "image", "influx", "influx2", "sql", "zmq", "edgex"))

_GO_FILES = {
    Kind.FUNCTION: "internal/binder/function/funcs_*.go",
    Kind.SOURCE: "internal/binder/io/builtin.go",
    Kind.SINK: "internal/binder/io/builtin.go",
}
_PROPERTIES: Dict[Kind, Dict[str, Reserved]] = {Kind.SOURCE: SOURCE_PROPERTIES, Kind.SINK: SINK_PROPERTIES}
_BUILTINS: Dict[Kind, Tuple[FrozenSet[str], FrozenSet[str]]] = {  # always there, in full/edgex builds only
    Kind.SOURCE: (BUILTIN_SOURCES, OPTIONAL_SOURCES),
    Kind.SINK: (BUILTIN_SINKS, OPTIONAL_SINKS),
}


def reserved_property(kind: Kind, name: str) -> Optional[Reserved]:
    """The reservation of property ``name`` of a ``source`` or ``sink``, compared ignoring case."""
    return _PROPERTIES.get(kind, {}).get(name.lower())


def builtin_symbol(kind: Kind, name: str, optional: bool = False) -> Optional[str]:
    """Where eKuiper defines a built-in ``kind`` named ``name`` (``None`` if it does not).

    ``optional=True`` also matches built-ins of eKuiper's ``full`` and ``edgex`` builds.
    """
    if kind == Kind.FUNCTION:  # SQL function names are case-insensitive
        return _GO_FILES[kind] if name.lower() in BUILTIN_FUNCTIONS else None
    if kind not in _BUILTINS:
        return None
    always, extra = _BUILTINS[kind]
    if name in always:
        return _GO_FILES[kind] if name not in ("redis", "redisPub", "redisSub") else "internal/binder/io/ext_redis.go"
    if optional and name in extra:
        return "internal/binder/io/ext_full.go / ext_edgex.go (full and edgex builds)"
    return None

"""Config classes: their fields, merging sources into one tree, and conversion by field type.

A config goes through three steps, so that every error names its key and source:

1. *merge*: class defaults, the instance passed to `main(cfg)`, YAML files and
   `-o` overrides are written into one nested dict (`ConfigTree`, `_tree`),
   checking each key against the class and remembering where each value came from;
2. *interpolate*: `${...}` in string values are resolved (`_interpolation`);
3. *build*: each value is converted to its field's type (cattrs, `_convert`) and
   the classes are instantiated (attrs validators run).

The work is done by four modules, one job each: `_fields` (what the fields of a
config class are), `_yaml_text` (untyped `Text` and reading files with the lines
of their keys), `_convert` (conversion and validation) and `_tree` (merging).
This module gathers their names for the rest of the cli.
"""

from __future__ import annotations

from flexlock.cli._convert import convert, converter
from flexlock.cli._fields import (
    MISSING,
    FieldSpec,
    config_fields,
    is_config_class,
    leaf_specs,
    type_name,
)
from flexlock.cli._tree import ConfigTree, build, structure_options, to_plain
from flexlock.cli._yaml_text import (
    ConversionError,
    Text,
    _LineDict,  # noqa: F401 - imported by _clicfg
    load_yaml_file,
    parse_yaml_text,
    resolve_text,
    with_lines,
)

_ConversionError = ConversionError  # the name tests and _tasks imported before the split

__all__ = [
    "MISSING",
    "ConfigTree",
    "ConversionError",
    "FieldSpec",
    "Text",
    "build",
    "config_fields",
    "convert",
    "converter",
    "is_config_class",
    "leaf_specs",
    "load_yaml_file",
    "parse_yaml_text",
    "resolve_text",
    "structure_options",
    "to_plain",
    "type_name",
    "with_lines",
]

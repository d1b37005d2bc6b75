"""A bot edited in the workspace's form, written back into its YAML text with the least change.

The form sends the whole bot as data; re-dumping it would lose the file's comments, quoting and
order, and make every diff between versions a rewrite. Instead the fields that changed are
found by comparing the data with the text's own, and only their spans are replaced:

- a changed scalar (a name, a question, a step's wording) becomes a double-quoted string (JSON's
  form, which YAML reads) in place of the old one;
- a changed list of scalars (similar questions, rules) is written again as a block list at the
  same indentation, its kept items as they were spelled (comments between its items go; those
  around it stay).

Anything else (a key added or removed, a block scalar, a list that was empty) falls back to a
plain dump of the data, and so does any splice whose result would not read back as exactly the
data sent: the text is always the data, and mostly the old text.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

Path_ = tuple[Any, ...]  # keys and indexes from the top of the bot


class _Fallback(Exception):
    """The change is not a set of in-place replacements."""


def _changes(old: Any, new: Any, path: Path_ = ()) -> list[tuple[Path_, Any]]:
    """The paths whose values differ, as replaceable units (scalars, lists of scalars)."""
    if old == new:
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        if old.keys() != new.keys():
            raise _Fallback
        return [c for k in old for c in _changes(old[k], new[k], (*path, k))]
    if isinstance(old, list) and isinstance(new, list):
        scalars = all(not isinstance(v, (dict, list)) for v in (*old, *new))
        if scalars and old and new:
            return [(path, new)]
        if len(old) != len(new):
            raise _Fallback
        return [c for i, (a, b) in enumerate(zip(old, new, strict=True))
                for c in _changes(a, b, (*path, i))]
    if isinstance(old, (dict, list)) or isinstance(new, (dict, list)):
        raise _Fallback
    return [(path, new)]


def _node(root: yaml.Node, path: Path_) -> yaml.Node:
    node = root
    for part in path:
        if isinstance(node, yaml.MappingNode):
            node = next(v for k, v in node.value if k.value == part)
        elif isinstance(node, yaml.SequenceNode):
            node = node.value[part]
        else:
            raise _Fallback
    return node


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(str(value), ensure_ascii=False)


def _splice(text: str, node: yaml.Node, value: Any) -> tuple[int, int, str]:
    if isinstance(node, yaml.ScalarNode):
        if node.style in ("|", ">") or node.start_mark.line != node.end_mark.line:
            raise _Fallback
        return node.start_mark.index, node.end_mark.index, _scalar(value)
    if isinstance(node, yaml.SequenceNode) and not node.flow_style and node.value:
        indent = " " * node.start_mark.column
        # an item kept keeps its own spelling (quoted or not)
        kept: dict[Any, str] = {}
        for item in node.value:
            source = text[item.start_mark.index:item.end_mark.index]
            if isinstance(item, yaml.ScalarNode) and "\n" not in source:
                kept.setdefault(yaml.safe_load(source), source)
        items = [f"- {kept.get(v) or _scalar(v)}" for v in value]
        return (node.start_mark.index, node.value[-1].end_mark.index,
                ("\n" + indent).join(items))
    raise _Fallback


def dump(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=1000)


def apply_form(text: str, data: dict[str, Any]) -> str:
    """``text`` with the fields that differ from ``data`` replaced (see the module)."""
    try:
        old = yaml.safe_load(text)
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        if not isinstance(old, dict) or root is None:
            raise _Fallback
        edits = sorted((_splice(text, _node(root, path), value) for path, value in
                        _changes(old, data)), reverse=True)
        out = text
        for start, end, replacement in edits:
            out = out[:start] + replacement + out[end:]
        if yaml.safe_load(out) != data:
            raise _Fallback
        return out
    except (_Fallback, yaml.YAMLError, StopIteration, IndexError, KeyError, TypeError):
        return dump(data)

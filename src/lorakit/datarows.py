"""ms-swift's rules for one dataset row, quoted from its preprocessors and template: how a
`messages` / sharegpt / alpaca / query-response row becomes standard messages
(swift/dataset/preprocessor/core.py), what the template refuses (template/base.py,
template_inputs.py), and which media paths it cannot open (template/vision_utils.py). A row
ms-swift would drop raises Drop; lorakit.datafile counts them.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any, Mapping

from lorakit import localpath


# MessagesPreprocessor: role/from, content/value, and the role names it maps.
USER_ROLES = ("user", "human")
ASSISTANT_ROLES = ("assistant", "gpt", "bot")
TOOL_CALL_ROLES = ("function_call",)
TOOL_RESPONSE_ROLES = ("function_response", "observation", "observations")
TOOL_ROLES = ("tool_call", "tool_response", "tool")
STD_ROLES = ("system", "user", "assistant", *TOOL_ROLES)  # RowPreprocessor._check_messages
ROLES_HINT = ("roles ms-swift reads: system, user (human), assistant (gpt, bot), tool_call (function_call), "
              "tool_response (tool, function_response, observation)")

_MEDIA_SUFFIX = re.compile(r"\.[A-Za-z0-9]{2,5}$")  # base64 text never holds a '.'


def kind_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "text" if value else "empty text"
    if isinstance(value, list):
        return "a list" if value else "an empty list"
    if isinstance(value, dict):
        return "an object" if value else "an empty object"
    return type(value).__name__


def _literal(text: str) -> tuple[Any, bool]:
    """default_repair_messages / ast.literal_eval: text that holds a list, as ms-swift reads it."""
    try:
        return json.loads(text), True
    except (ValueError, RecursionError):
        pass
    import ast

    try:
        return ast.literal_eval(text), True
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None, False


class Drop(Exception):
    """This row is one ms-swift would drop (or stop on, with --strict true)."""

    def __init__(self, code: str, message: str, hint: str = ""):
        super().__init__(message)
        self.code, self.message, self.hint = code, message, hint


# A message as ms-swift normalises it: (role, content, what the user calls it: 'message 2 (user)', 'query').
Std = tuple[str, Any, str]


def messages(row: dict, column: str) -> tuple[list[Std], str]:
    """MessagesPreprocessor.preprocess, then _check_messages. Returns (messages, format)."""
    value = row.get("messages")
    if isinstance(value, str):
        value, ok = _literal(value)
        if not ok:
            raise Drop("data.messages.invalid", f"{column} is text that is neither JSON nor a Python literal")
    if not value or isinstance(value, str):  # preprocess returns None: dropped without a word
        raise Drop("data.messages.invalid", f"{column} is {kind_of(value)}: ms-swift drops the row without a warning")
    if not isinstance(value, list):
        raise Drop("data.messages.invalid", f"{column} is {kind_of(value)}, not a list of messages")
    for i, message in enumerate(value, 1):
        if not isinstance(message, dict):
            raise Drop("data.messages.invalid", f"message {i} is {kind_of(message)}, not an object")
    if any(m.get("tool_calls") for m in value) or any(
            isinstance(m.get("content"), list) and any(isinstance(b, dict) and (
                b.get("type") in ("tool_use", "tool_result") or b.get("type") == "image" and "source" in b)
                for b in m["content"]) for m in value):
        return [], "messages"  # OpenAI / Anthropic tool calls: ms-swift converts them; not checked here
    system = row.get("system")
    messages = []
    for m in value:  # _to_std_key: 'from' -> role, 'value' -> content (the later key wins)
        m = dict(m)
        for std, keys in (("role", ("role", "from")), ("content", ("content", "value"))):
            for key in keys:
                if key in m:
                    m[std] = m.pop(key)
        messages.append(m)
    sharegpt = any("from" in m for m in value)
    if "role" not in messages[0] and "content" not in messages[0]:  # _is_sharegpt_format: pairs
        out: list[Std] = [("system", system, "system")] if system is not None else []
        for i, m in enumerate(messages, 1):
            for std, names in (("user", USER_ROLES), ("assistant", ASSISTANT_ROLES)):
                for name in names:
                    if name in m:
                        m[std] = m.pop(name)
            if "user" not in m or "assistant" not in m:
                raise Drop("data.messages.invalid",
                            f"message {i} has keys {', '.join(map(str, m)) or 'none'}: in sharegpt's pair format "
                            f"each item needs user (human) and assistant (gpt, bot)")
            out += [("user", m["user"], f"message {i} (user)"),
                    ("assistant", m["assistant"], f"message {i} (assistant)")]
        _check_contents(out)
        return out, "sharegpt"
    out = []
    for i, m in enumerate(messages, 1):
        if "role" not in m:
            raise Drop("data.messages.invalid", f"message {i} has no role (keys: {', '.join(map(str, m))})",
                        ROLES_HINT)
        role = m["role"]
        if role in USER_ROLES:
            role = "user"
        elif role in ASSISTANT_ROLES:
            role = "assistant"
        elif not isinstance(role, str):
            raise Drop("data.messages.invalid", f"message {i} has role {role!r}, which is not text", ROLES_HINT)
        elif role.replace("-", "_") in TOOL_CALL_ROLES:
            role = "tool_call"
        elif role.replace("-", "_") in TOOL_RESPONSE_ROLES:
            role = "tool_response"
        if role not in STD_ROLES:
            raise Drop("data.messages.invalid", f"message {i} has role {m['role']!r}, which ms-swift does not know",
                        ROLES_HINT)
        if "content" not in m:
            raise Drop("data.messages.invalid", f"message {i} ({role}) has no content")
        if m["content"] is None:
            raise Drop("data.messages.invalid", f"message {i} ({role}) has null content")
        out.append((role, m["content"], f"message {i}" + (f" ({role})" if role != "system" else "")))
    if out[0][0] != "system" and system is not None:  # to_std_messages
        out.insert(0, ("system", system, "system"))
    return out, "sharegpt" if sharegpt else "messages"


def _check_contents(messages: list[Std]) -> None:
    for _, content, label in messages:
        if content is None:
            raise Drop("data.messages.invalid", f"{label} has null content")


def response(row: dict, alpaca: bool, name: Mapping[str, str]) -> tuple[list[Std], str]:
    """AlpacaPreprocessor / ResponsePreprocessor.preprocess, then history_to_messages. `name`
    gives a column's name in the file ('completion' for ms-swift's 'response')."""
    response = row.get("response")
    if alpaca:
        instruction, input_ = row.get("instruction"), row.get("input")
        if row.get("output") is not None:
            response = row["output"]
        query = f"{instruction}\n{input_}" if instruction and input_ else instruction or input_
        if not isinstance(query, str):  # concat_inst_input: assert isinstance(query, str)
            raise Drop("data.row.invalid", f"instruction ({kind_of(instruction)}) and input ({kind_of(input_)}) make "
                        "no text query (ms-swift: assert isinstance(query, str))")
    else:
        query = row.get("query")
    if isinstance(response, list):
        if not response:
            raise Drop("data.row.invalid", "response is an empty list")
        response = response[0]  # ms-swift trains on the first (RANDOM_DATASET_RESPONSE: a random one)
    history = row.get("history") or []
    if isinstance(history, str):
        history, ok = _literal(history)
        if not ok:
            raise Drop("data.row.invalid", "history is text that is neither JSON nor a Python literal")
    if not isinstance(history, list):
        raise Drop("data.row.invalid", f"history is {kind_of(history)}, not a list of [query, response] pairs")
    for j, pair in enumerate(history, 1):
        if not isinstance(pair, (list, tuple)) or len(pair) < 2:
            raise Drop("data.row.invalid", f"history item {j} is {kind_of(pair)}"
                        + (f" of {len(pair)}" if isinstance(pair, (list, tuple)) else "")
                        + ", not a [query, response] pair")
    system = row.get("system")
    out: list[Std] = [("system", system, name.get("system", "system"))] if system is not None else []
    query_name = "instruction/input" if alpaca else name.get("query", "query")
    response_name = "output" if alpaca and row.get("output") is not None else name.get("response", "response")
    for j, (q, r, *_) in enumerate(history, 1):
        out += [("user", q, f"history item {j} query")] if q is not None else []
        out += [("assistant", r, f"history item {j} response")] if r is not None else []
    out += [("user", query, query_name)] if query is not None else []
    out += [("assistant", response, response_name)] if response is not None else []
    return out, "alpaca" if alpaca else "query-response"


def template(messages: list[Std]) -> str | None:
    """What the swift template (template/base.py, template_inputs.py) refuses; returns a warning
    when the row encodes but holds nothing to train on."""
    for role, content, label in messages:
        if role not in TOOL_ROLES and not isinstance(content, (str, list)):
            what = f"{label} content" if label.startswith("message") else label
            raise Drop("data.messages.invalid", f"{what} is {kind_of(content)}: ms-swift's template needs text")
    rest = messages[1:] if messages and messages[0][0] == "system" else messages
    if not rest:
        raise Drop("data.messages.invalid", "only a system message: ms-swift's template has nothing to encode")
    for role, _, label in rest:
        if role == "system":
            raise Drop("data.messages.invalid", f"{label} is a system message after the start: ms-swift's "
                        "template takes system only as the first message")
    if rest[0][0] in ("tool", "tool_response"):
        raise Drop("data.messages.invalid", f"{rest[0][2]} is a tool response with no user message before "
                    "it (ms-swift: 'A standalone tool message must follow a user message')")
    if not any(role in ("assistant", "tool_call") for role, _, _ in rest):
        return "no assistant message: ms-swift keeps the row but it has nothing to train on (every label is -100)"
    return None


def media(row: dict, cwd: str, root: str | None, data_dir: str, name: Mapping[str, str]) -> None:
    """template/vision_utils.py _check_path: a media path is opened from the launch dir, or
    under ROOT_IMAGE_DIR; http(s) URLs, data: URIs and base64 text are not paths."""
    for key in ("images", "videos", "audios"):
        value = row.get(key)
        items = value if isinstance(value, list) else [value]
        for n, item in enumerate(items):
            if isinstance(item, dict) and item.get("bytes") is None:
                item = item.get("path")
            if not isinstance(item, str):
                continue
            text = item.strip()
            if (len(text) > 2000 or text.startswith(("http", "data:")) or not _MEDIA_SUFFIX.search(text)
                    or localpath.exists(text, cwd) or (root and localpath.exists(os.path.join(root, text), cwd))):
                continue
            where = name.get(key, key) + (f"[{n}]" if isinstance(value, list) else "")
            beside = os.path.join(data_dir, text)
            hint = (f"it is there from the dataset's folder ({beside}); ms-swift opens media paths from the launch "
                    f"dir ({cwd}) or ROOT_IMAGE_DIR: set ROOT_IMAGE_DIR={data_dir} or write absolute paths"
                    if not os.path.isabs(text) and os.path.exists(beside) else
                    f"ms-swift opens media paths from the launch dir ({cwd}) or ROOT_IMAGE_DIR")
            raise Drop("data.media.missing", f"{where} {text!r} does not exist ({localpath.absolute(text, cwd)})",
                        hint)

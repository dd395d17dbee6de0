"""The environment variables a Qwen-VL load parses, in the order it parses them, as the installed
ms-swift and qwen_vl_utils do it (checks/pixels.py reports the first it cannot parse).

1. The loader: the Qwen3-VL embedding/reranker loaders `os.environ.setdefault('IMAGE_MAX_TOKEN_NUM',
   ...)` first (4.6.0 swift/model/models/qwen.py:1795, 2569, 2595); then, from 3.10.1 with
   qwen_vl_utils 0.0.14+, compat_qwen_vl_utils int()s each non-empty pixel cap (MAX_PIXELS...)
   into its token count when that count is unset or empty (qwen.py:758-770, `if value and not
   os.getenv(target_var)`), and int()s SPATIAL_MERGE_SIZE.
2. Importing qwen_vl_utils.vision_process: 0.0.10/0.0.11 int(float()) VIDEO_MAX_PIXELS, 0.0.13+
   MODEL_SEQ_LEN (their vision_process.py module level).
3. patch_qwen_vl_utils: from 3.5.0 an empty VIDEO_TOTAL_PIXELS beside a VIDEO_MAX_PIXELS is refilled
   (qwen.py:711-713); then get_env_args (int(), float() for FPS; an empty value included, as
   swift/utils/utils.py never skips one) for each name of its list that the installed
   vision_process defines: up to 0.0.11 the caps are pixels, from 0.0.13 tokens (0.0.12 was never
   on PyPI); 3.3.0-3.8.x list the pixel names only, 3.9.0+ the token names too.
"""

from __future__ import annotations

from typing import Callable

PIXEL_NAMES = ("IMAGE_FACTOR", "MIN_PIXELS", "MAX_PIXELS", "MAX_RATIO", "VIDEO_MIN_PIXELS", "VIDEO_MAX_PIXELS",
               "VIDEO_TOTAL_PIXELS", "FRAME_FACTOR", "FPS", "FPS_MIN_FRAMES", "FPS_MAX_FRAMES")
TOKEN_NAMES = ("MAX_RATIO", "SPATIAL_MERGE_SIZE", "IMAGE_MIN_TOKEN_NUM", "IMAGE_MAX_TOKEN_NUM",
               "VIDEO_MIN_TOKEN_NUM", "VIDEO_MAX_TOKEN_NUM", "FPS", "FRAME_FACTOR", "FPS_MIN_FRAMES", "FPS_MAX_FRAMES")
COMPAT = {"MAX_PIXELS": "IMAGE_MAX_TOKEN_NUM", "MIN_PIXELS": "IMAGE_MIN_TOKEN_NUM",
          "VIDEO_MAX_PIXELS": "VIDEO_MAX_TOKEN_NUM", "VIDEO_MIN_PIXELS": "VIDEO_MIN_TOKEN_NUM"}
# loaders that give IMAGE_MAX_TOKEN_NUM a default before compat runs (4.6.0 qwen.py:1795, 2569,
# 2595; Qwen3_5EmbLoader serves wemm_embedding too)
SELF_CAPPED = {"qwen3_vl_emb": "1800", "qwen3_5_emb": "1800", "wemm_embedding": "1800", "qwen3_vl_reranker": "1280"}
NAMES = tuple(dict.fromkeys((*PIXEL_NAMES, *TOKEN_NAMES, "MODEL_SEQ_LEN")))


def _key(text: str | None) -> tuple | None:
    from lorakit.checks.requires import version_key

    return None if not text else version_key(text)


class Unparsed:
    """`name`'s `value` (set at `where`) failed `parse` ('int()' / 'float()') while `when`."""

    def __init__(self, name: str, value: str, where: str, parse: str, when: str):
        self.name, self.value, self.where, self.parse, self.when = name, value, where, parse, when


def _fails(parse: Callable, value: str) -> bool:
    try:
        parse(value)
    except (ValueError, OverflowError, ZeroDivisionError):
        return True
    return False


def _int_of_float(value: str) -> int:
    """qwen_vl_utils' module-level int(float(...)): 'inf' and 'nan' pass float() and fail int()."""
    return int(float(value))


def _nonzero(value: str) -> int:
    """compat_qwen_vl_utils divides by (patch size x SPATIAL_MERGE_SIZE) squared."""
    return 1 // int(value)


def judged(swift: str | None, vl: str | None) -> bool:
    """Whether what this pair of versions parses is known (and the pair is not refused first)."""
    s, v = _key(swift), _key(vl)
    return not (s is None or v is None or s < _key("3.3.0") or (v >= _key("0.0.12") and s < _key("3.8.1")))


PARSERS = {"int()": int, "float()": float, "int(float())": _int_of_float, "a non-zero int()": _nonzero}


def error_of(parse: str, value: str) -> str:
    """Python's own words for the failure (ms-swift's run says the same)."""
    try:
        PARSERS[parse](value)
    except (ValueError, OverflowError, ZeroDivisionError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return ""


def first_unparsed(swift: str, vl: str, model_type: str | None,
                   values: dict[str, tuple[str, str]]) -> Unparsed | None:
    """The first variable of `values` (name -> (value, where)) the load cannot parse; None when all
    parse, or when which are parsed is not known for this pair of versions."""
    if not judged(swift, vl):
        return None  # nothing parsed at load, or the pair is refused first (visionutils.refusal)
    s, v = _key(swift), _key(vl)
    got = {name: value for name, (value, _) in values.items()}
    if model_type in SELF_CAPPED and "IMAGE_MAX_TOKEN_NUM" not in got:
        got["IMAGE_MAX_TOKEN_NUM"] = SELF_CAPPED[model_type]
    if s >= _key("3.10.1") and v >= _key("0.0.14"):
        converts = any(got.get(p) and not got.get(t) for p, t in COMPAT.items())
        if "SPATIAL_MERGE_SIZE" in got and _fails(_nonzero if converts else int, got["SPATIAL_MERGE_SIZE"]):
            zero = not _fails(int, got["SPATIAL_MERGE_SIZE"])
            return Unparsed("SPATIAL_MERGE_SIZE", got["SPATIAL_MERGE_SIZE"], values["SPATIAL_MERGE_SIZE"][1],
                            "a non-zero int()" if zero else "int()", "converting the pixel caps into token counts")
        for pixels, tokens in COMPAT.items():
            if got.get(pixels) and not got.get(tokens):
                if _fails(int, got[pixels]):
                    return Unparsed(pixels, got[pixels], values[pixels][1], "int()",
                                    f"converting it into {tokens} (compat_qwen_vl_utils)")
                got[tokens] = str(int(got[pixels]) // 784)  # filled: what patch_qwen_vl_utils then reads
    at_import = ("VIDEO_MAX_PIXELS",) if _key("0.0.10") <= v < _key("0.0.12") else \
        ("MODEL_SEQ_LEN",) if v >= _key("0.0.13") else ()
    for name in at_import:
        if name in got and _fails(_int_of_float, got[name]):
            return Unparsed(name, got[name], values[name][1], "int(float())", "importing qwen_vl_utils")
    if s >= _key("3.5.0") and got.get("VIDEO_MAX_PIXELS") and not got.get("VIDEO_TOTAL_PIXELS"):
        got["VIDEO_TOTAL_PIXELS"] = "90316800"
    listed = PIXEL_NAMES if s < _key("3.9.0") else (*PIXEL_NAMES, *TOKEN_NAMES)
    defined = PIXEL_NAMES if v < _key("0.0.12") else TOKEN_NAMES
    for name in dict.fromkeys(listed):
        if name in defined and name in values and name in got:
            parse = float if name == "FPS" else int
            if _fails(parse, got[name]):
                return Unparsed(name, got[name], values[name][1], f"{parse.__name__}()", "loading the Qwen-VL processor")
    return None

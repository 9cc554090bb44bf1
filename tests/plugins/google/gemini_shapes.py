"""What the Gemini API accepts: checks shared by the REST and the Live test servers.

Written from the public API reference (ai.google.dev/api: ``Content``,
``Part``, ``FunctionCall``, ``FunctionResponse``, ``Tool``,
``FunctionDeclaration``, ``Schema``, ``ToolConfig``, ``GenerationConfig``)
and the function-calling and thought-signature guides. Each check returns
the reason a value would be refused with ``400 INVALID_ARGUMENT`` (the API's
own wording where it is known), or None.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

PART_DATA = {
    "text",
    "inlineData",
    "functionCall",
    "functionResponse",
    "fileData",
    "executableCode",
    "codeExecutionResult",
}
PART_META = {"thought", "thoughtSignature", "videoMetadata", "partMetadata"}
SCHEMA_KEYS = {
    "type",
    "format",
    "title",
    "description",
    "nullable",
    "enum",
    "maxItems",
    "minItems",
    "properties",
    "required",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "example",
    "anyOf",
    "propertyOrdering",
    "default",
    "items",
    "minimum",
    "maximum",
}
TYPES = {"string", "number", "integer", "boolean", "array", "object", "null"}
FORMATS = {"string": {"enum", "date-time"}, "number": {"float", "double"}, "integer": {"int32", "int64"}}
FUNCTION_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$")


def unknown(value: dict[str, Any], allowed: set[str], where: str) -> str | None:
    extra = sorted(set(value) - allowed)
    return (
        f"Invalid JSON payload received. Unknown name \"{extra[0]}\" at '{where}': Cannot find field."
        if extra
        else None
    )


def is_base64(value: object) -> bool:
    if not isinstance(value, str) or not value:
        return False
    try:
        base64.b64decode(value.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def check_part(part: Any, role: str, where: str) -> str | None:
    if not isinstance(part, dict):
        return f"{where} must be an object"
    if problem := unknown(part, PART_DATA | PART_META, where):
        return problem
    data = [key for key in PART_DATA if key in part]
    if len(data) != 1:
        return f"{where} must hold exactly one of text, inlineData, functionCall, functionResponse (got {data})"
    if "thoughtSignature" in part and not is_base64(part["thoughtSignature"]):
        return f"{where}.thoughtSignature: Corrupted thought signature."
    if "text" in part:
        if not isinstance(part["text"], str) or not part["text"]:
            return "Unable to submit request because it has an empty text parameter."
    if "functionCall" in part:
        call = part["functionCall"]
        if role != "model":
            return f"{where}: a functionCall part belongs in a model turn"
        if not isinstance(call, dict) or (problem := unknown(call, {"name", "args", "id"}, f"{where}.functionCall")):
            return problem or f"{where}.functionCall must be an object"
        if not isinstance(call.get("name"), str) or not call["name"]:
            return f"{where}.functionCall.name is required"
        if "args" in call and not isinstance(call["args"], dict):
            return f"{where}.functionCall.args must be an object"
    if "functionResponse" in part:
        response = part["functionResponse"]
        if role != "user":
            return f"{where}: a functionResponse part belongs in a user turn"
        if not isinstance(response, dict) or (
            problem := unknown(
                response, {"name", "response", "id", "willContinue", "scheduling"}, f"{where}.functionResponse"
            )
        ):
            return problem or f"{where}.functionResponse must be an object"
        if not isinstance(response.get("name"), str) or not isinstance(response.get("response"), dict):
            return f"{where}.functionResponse needs a name and a response object"
    if "inlineData" in part:
        blob = part["inlineData"]
        if not isinstance(blob, dict) or not isinstance(blob.get("mimeType"), str) or not is_base64(blob.get("data")):
            return f"{where}.inlineData needs a mimeType and base64 data"
    return None


def check_content(content: Any, where: str, *, roles: tuple[str, ...] = ("user", "model")) -> str | None:
    if not isinstance(content, dict) or (problem := unknown(content, {"role", "parts"}, where)):
        return problem or f"{where} must be an object"
    if content.get("role") not in roles:
        return f"{where}.role must be one of {roles}, got {content.get('role')!r}"
    parts = content.get("parts")
    if not isinstance(parts, list) or not parts:
        return f"{where}.parts: contents.parts must not be empty."
    for index, part in enumerate(parts):
        if problem := check_part(part, content["role"], f"{where}.parts[{index}]"):
            return problem
    return None


def check_turn_order(contents: list[dict[str, Any]], *, first_user: bool = True) -> str | None:
    """Roles alternate; each model turn's calls are answered by the next user turn, one for each."""
    if first_user and contents and contents[0]["role"] != "user":
        return "Please ensure that multiturn requests alternate between user and model, starting with the user."
    for index, (before, after) in enumerate(zip(contents, contents[1:], strict=False)):
        if before["role"] == after["role"]:
            return f"contents[{index + 1}]: Please ensure that multiturn requests alternate between user and model."
    for index, content in enumerate(contents):
        calls = [p["functionCall"] for p in content["parts"] if "functionCall" in p]
        if not calls:
            continue
        following = contents[index + 1] if index + 1 < len(contents) else None
        answers = [p["functionResponse"] for p in following["parts"] if "functionResponse" in p] if following else []
        if len(answers) != len(calls):
            return (
                "Please ensure that the number of function response parts is equal to the number of "
                f"function call parts of the function call turn (contents[{index}])."
            )
        if sorted(c["name"] for c in calls) != sorted(a["name"] for a in answers):
            return f"contents[{index + 1}]: function responses do not name the calls of contents[{index}]"
        call_ids = sorted(c["id"] for c in calls if "id" in c)
        answer_ids = sorted(a["id"] for a in answers if "id" in a)
        if call_ids != answer_ids:
            return f"contents[{index + 1}]: function response ids {answer_ids} do not match the call ids {call_ids}"
    return None


def check_schema(schema: Any, where: str, depth: int = 0) -> str | None:
    if not isinstance(schema, dict):
        return f"{where} must be an object"
    if problem := unknown(schema, SCHEMA_KEYS, where):
        return problem
    kind = str(schema.get("type", "")).lower()
    if "anyOf" in schema:
        branches = schema["anyOf"]
        if not isinstance(branches, list) or not branches:
            return f"{where}.anyOf must be a non-empty list"
        return next(
            (p for i, b in enumerate(branches) if (p := check_schema(b, f"{where}.anyOf[{i}]", depth + 1))), None
        )
    if kind not in TYPES:
        return f"{where}.type: invalid value {schema.get('type')!r}"
    if "format" in schema and schema["format"] not in FORMATS.get(kind, set()):
        return f"{where}.format: only {sorted(FORMATS.get(kind, set()))} are supported for {kind.upper()} type"
    if "enum" in schema and (kind != "string" or not all(isinstance(v, str) for v in schema["enum"])):
        return f"{where}.enum: only allowed for STRING type"
    if kind == "object":
        properties = schema.get("properties")
        if not isinstance(properties, dict) or not properties:
            return f"{where}.properties: should be non-empty for OBJECT type"
        for name, sub in properties.items():
            if problem := check_schema(sub, f"{where}.properties[{name}]", depth + 1):
                return problem
        missing = [n for n in schema.get("required", []) if n not in properties]
        if missing:
            return f"{where}.required[{missing[0]}]: property is not defined"
    if kind == "array":
        if "items" not in schema:
            return f"{where}.items: missing field."
        return check_schema(schema["items"], f"{where}.items", depth + 1)
    return None


def check_tools(tools: Any, where: str = "tools") -> str | None:
    if not isinstance(tools, list):
        return f"{where} must be a list"
    for index, tool in enumerate(tools):
        at = f"{where}[{index}]"
        if not isinstance(tool, dict) or (
            problem := unknown(tool, {"functionDeclarations", "googleSearch", "codeExecution"}, at)
        ):
            return problem or f"{at} must be an object"
        for number, declaration in enumerate(tool.get("functionDeclarations", [])):
            place = f"{at}.function_declarations[{number}]"
            allowed = {"name", "description", "parameters", "parametersJsonSchema", "response", "behavior"}
            if not isinstance(declaration, dict) or (problem := unknown(declaration, allowed, place)):
                return problem or f"{place} must be an object"
            if not isinstance(declaration.get("name"), str) or not FUNCTION_NAME.match(declaration["name"]):
                return f"{place}.name: Invalid function name {declaration.get('name')!r}."
            if not isinstance(declaration.get("description", ""), str):
                return f"{place}.description must be a string"
            if "parameters" in declaration and (
                problem := check_schema(declaration["parameters"], f"{place}.parameters")
            ):
                return problem
    return None


def check_system_instruction(value: Any) -> str | None:
    return check_content(
        {"role": "user", **value} if isinstance(value, dict) else value, "system_instruction", roles=("user", "system")
    )

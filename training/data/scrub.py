"""Secrets and personal data replaced by placeholders before anything is tokenised.

Three layers, most specific first:
  - PEM private-key blocks -> <KEY>;
  - `detect-secrets`' pattern plugins (AWS, GitHub, GitLab, Slack, Stripe, JWT, OpenAI, PyPI, npm, ...) -> <KEY>;
    its entropy and keyword plugins are left out: on source code they flag most long identifiers;
  - our regexes: quoted values assigned to password/secret/token/api-key names -> <PASSWORD>; e-mail addresses
    -> <EMAIL>.
Counts per kind go to the manifest. detect-secrets only sees lines holding a long token-like run, which keeps the
scan cheap (it costs ~0.3 ms a line otherwise).
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from dataclasses import dataclass

KEY, PASSWORD, EMAIL = "<KEY>", "<PASSWORD>", "<EMAIL>"

_PLUGINS = (
    "ArtifactoryDetector", "AWSKeyDetector", "AzureStorageKeyDetector", "BasicAuthDetector", "DiscordBotTokenDetector",
    "GitHubTokenDetector", "GitLabTokenDetector", "JwtTokenDetector", "MailchimpDetector", "NpmDetector",
    "OpenAIDetector", "PrivateKeyDetector", "PypiTokenDetector", "SendGridDetector", "SlackDetector",
    "SquareOAuthDetector", "StripeDetector", "TelegramBotTokenDetector", "TwilioKeyDetector",
)  # fmt: skip

_PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.DOTALL)
_EMAIL = re.compile(
    r"(?<![\w.@])[A-Za-z0-9._%+-]+@(?:[A-Za-z0-9-]+\.)+(?:com|org|net|edu|gov|io|dev|ai|info|biz|app|[a-z]{2})\b"
)
_ASSIGNED_SECRET = re.compile(
    r"""(?ix)
    (?P<name>(?<![\w.-])[\w.-]*?(?:password|passwd|pwd|secret|api[_-]?key|access[_-]?key|auth[_-]?token|private[_-]?key)[\w-]*)
    (?P<op>["']?\s*[:=]\s*)
    (?P<quote>["'])(?P<value>[^"'\s]{8,})(?P=quote)
    """
)
_SECRET_NAME = re.compile(r"(?i)passw|pwd|secret|api[_-]?key|access[_-]?key|auth[_-]?token|private[_-]?key")
_CANDIDATE = re.compile(r"[A-Za-z0-9_\-+/=]{20,}")
_TOKEN_CHARS = re.compile(r"[A-Za-z0-9_\-+/=.:~]+")


@dataclass
class Scrubbed:
    text: str
    counts: Counter  # "key" / "password" / "email" -> replacements


def scrub(text: str) -> Scrubbed:
    counts: Counter = Counter()
    text, counts["key"] = _PRIVATE_KEY.subn(KEY, text)
    text, found = _scrub_detected(text)
    counts["key"] += found
    text, counts["password"] = _scrub_assigned(text)
    text, counts["email"] = _EMAIL.subn(EMAIL, text)
    return Scrubbed(text, +counts)


def _scrub_assigned(text: str) -> tuple[str, int]:
    replaced = 0

    def replace(match: re.Match) -> str:
        nonlocal replaced
        if not _looks_secret(match["value"]):
            return match[0]
        replaced += 1
        return f"{match['name']}{match['op']}{match['quote']}{PASSWORD}{match['quote']}"

    lines = text.split("\n")
    for index in _lines_matching(_SECRET_NAME, text):  # cheap gate: the full pattern is slow on every line
        lines[index] = _ASSIGNED_SECRET.sub(replace, lines[index])
    return "\n".join(lines), replaced


def _looks_secret(value: str) -> bool:
    """Real secrets mix letters and digits; placeholders, templates and variable names do not."""
    if any(mark in value for mark in "{}$%<>()[]"):
        return False
    return bool(re.search(r"\d", value)) and bool(re.search(r"[A-Za-z]", value)) and len(set(value)) > 4


def _scrub_detected(text: str) -> tuple[str, int]:
    lines = text.split("\n")
    replaced = 0
    for index in _lines_matching(_CANDIDATE, text):
        line = lines[index]
        for plugin in _detectors():
            for value in list(plugin.analyze_string(line)):
                line, hits = _replace_token_around(line, value)
                replaced += hits
        lines[index] = line
    return "\n".join(lines), replaced


@functools.cache
def _detectors() -> tuple:
    """detect-secrets' pattern plugins, used directly (its scan API re-reads global settings on every call)."""
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class

    classes = {cls.__name__: cls for cls in get_mapping_from_secret_type_to_class().values()}
    return tuple(classes[name]() for name in _PLUGINS)


def _lines_matching(pattern: re.Pattern, text: str) -> list[int]:
    """Indices of the lines where `pattern` matches, from one pass over the whole text."""
    indices, line, position = [], 0, 0
    for match in pattern.finditer(text):
        line += text.count("\n", position, match.start())
        position = match.start()
        if not indices or indices[-1] != line:
            indices.append(line)
    return indices


def _replace_token_around(line: str, value: str) -> tuple[str, int]:
    """Replaces the whole token-like run containing `value` (plugins sometimes report only a prefix of it)."""
    position = line.find(value) if value else -1
    if position < 0:
        return line, 0
    for run in _TOKEN_CHARS.finditer(line):
        if run.start() <= position < run.end():
            return line[: run.start()] + KEY + line[run.end() :], 1
    return line, 0

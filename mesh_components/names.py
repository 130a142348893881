"""Name rules from Kubernetes (DNS-1123) and the field's naming conventions, as small pure checks.

Source: https://kubernetes.io/docs/concepts/overview/working-with-objects/names/
"""
from __future__ import annotations

import re

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
LABEL_KEY_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")


def suggest_label(value: str) -> str:
    """A DNS-1123 label close to ``value``: lower-cased, other characters turned into '-'."""
    s = re.sub(r"[^a-z0-9-]+", "-", value.lower()).strip("-")
    return s[:63].rstrip("-") or "name"


def dns1123_label_problem(value: str) -> str | None:
    """Why ``value`` is not a DNS-1123 label (max 63 chars), with a fix; None when it is one."""
    if len(value) > 63:
        return f"{value!r} is longer than 63 characters; shorten it (a DNS-1123 label)"
    if not DNS1123_LABEL.match(value):
        return (f"{value!r} is not a DNS-1123 label: use lower-case letters, digits and '-', starting "
                f"and ending with a letter or digit (e.g. {suggest_label(value)!r})")
    return None


def dns1123_subdomain_problem(value: str) -> str | None:
    """Why ``value`` is not a DNS-1123 subdomain (max 253 chars), with a fix; None when it is one."""
    if len(value) > 253:
        return f"{value!r} is longer than 253 characters"
    if not DNS1123_SUBDOMAIN.match(value):
        return (f"{value!r} is not a DNS-1123 subdomain: use lower-case letters, digits, '-' and '.' "
                f"(e.g. {suggest_label(value)!r})")
    return None


def label_problem(key: str, value: str) -> str | None:
    """Why ``key: value`` is not a valid Kubernetes label; None when it is one."""
    prefix, _, short = key.rpartition("/")
    if not short or len(short) > 63 or not LABEL_KEY_NAME.match(short) \
            or (prefix and (len(prefix) > 253 or not DNS1123_SUBDOMAIN.match(prefix))):
        return f"label key {key!r} is not valid: use [prefix/]name, name up to 63 alphanumerics, '-', '_' or '.'"
    if len(value) > 63 or not LABEL_VALUE.match(value):
        return f"label value {value!r} for {key!r} is not valid: up to 63 alphanumerics, '-', '_' or '.'"
    return None

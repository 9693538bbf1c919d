"""Licence detection from files and package metadata, and the allow-list."""

from __future__ import annotations

from email.message import Message

import pytest

from training.data.licenses import DEFAULT_ALLOWED, UNKNOWN, from_directory, from_metadata, is_allowed, normalise_name

ALLOWED = set(DEFAULT_ALLOWED)
APACHE = "                                 Apache License\n                           Version 2.0, January 2004\n"
BSD3 = (
    "Redistribution and use in source and binary forms, with or without modification, are permitted...\n"
    "3. Neither the name of the copyright holder nor the names of its contributors may be used...\n"
)
GPL = "GNU GENERAL PUBLIC LICENSE\nVersion 3, 29 June 2007\n"


def _metadata(**fields) -> Message:
    message = Message()
    for key, value in fields.items():
        for item in value if isinstance(value, list) else [value]:
            message[key.replace("_", "-")] = item
    return message


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"LICENSE": APACHE}, "Apache-2.0"),
        ({"LICENSE.md": BSD3}, "BSD-3-Clause"),
        ({"COPYING": GPL}, "GPL-3.0-or-later"),
        ({"pyproject.toml": '[project]\nname = "x"\nlicense = "MIT"\n'}, "MIT"),
        ({"package.json": '{"name": "x", "license": "ISC"}'}, "ISC"),
        ({"README.md": "no licence here"}, UNKNOWN),
    ],
)
def test_directory_licence(tmp_path, files, expected):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    assert from_directory(tmp_path).spdx == expected


def test_metadata_prefers_expression_then_field_then_classifier():
    assert from_metadata(_metadata(License_Expression="MIT OR Apache-2.0", License="GPL"), []).spdx == (
        "MIT OR Apache-2.0"
    )
    assert from_metadata(_metadata(License="Apache 2.0"), []).spdx == "Apache-2.0"
    classified = _metadata(License="UNKNOWN", Classifier=["License :: OSI Approved :: BSD License"])
    assert from_metadata(classified, []).evidence == "METADATA classifier"
    assert from_metadata(classified, []).spdx == "BSD-3-Clause"


def test_pasted_licence_text_is_read_by_its_first_licence():
    bundle = "Copyright (c) NumPy Developers\n" + BSD3 + "\n\nBundled runtime:\n" + GPL
    assert from_metadata(_metadata(License=bundle), []).spdx == "BSD-3-Clause"


def test_bundled_licence_file_is_the_last_resort():
    assert from_metadata(_metadata(), [APACHE]).spdx == "Apache-2.0"
    assert from_metadata(_metadata(), []).spdx == UNKNOWN


@pytest.mark.parametrize(
    ("expression", "allowed"),
    [
        ("MIT", True),
        ("GPL-3.0-or-later", False),
        ("MIT OR GPL-3.0-only", True),
        ("MIT AND GPL-3.0-only", False),
        ("Apache-2.0 WITH LLVM-exception AND BSD-2-Clause", True),
        ("(MIT OR GPL-2.0-only) AND Apache-2.0", True),
        ("(LGPL-2.1-only OR GPL-2.0-only) AND MIT", False),
        (UNKNOWN, False),
        ("MIT OR", False),  # not an expression: never admitted
        ("mit or apache-2.0", True),  # SPDX ids are case-insensitive
    ],
)
def test_allow_list_expressions(expression, allowed):
    assert is_allowed(expression, ALLOWED) is allowed


def test_a_narrow_allow_list_rejects_other_permissive_licences():
    assert not is_allowed("Apache-2.0", {"MIT"})


@pytest.mark.parametrize(
    ("name", "spdx"),
    [
        ("mit", "MIT"),
        ("GPL-2.0+", "GPL-2.0-or-later"),  # a deprecated id becomes its current one
        ("MIT OR apache-2.0", "MIT OR Apache-2.0"),
        ("BSD License", "BSD-3-Clause"),  # a known free-text name
        ("Some Custom Licence", None),
        ("Proprietary-Thing", None),  # dashes alone no longer pass for an SPDX id
        ("MIT AND (", None),
    ],
)
def test_metadata_names_are_normalised_to_spdx(name, spdx):
    assert normalise_name(name) == spdx

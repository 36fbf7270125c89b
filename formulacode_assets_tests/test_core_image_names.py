"""The one image-name function: layouts, cleaning, length limits; and that nothing else spells names."""

import re
from pathlib import Path

import pytest

from formulacode_assets.core.publishing.image_names import MAX_TAG, image_name, image_name_for

SHA = "0123456789abcdef0123456789abcdef01234567"
PACKAGE = Path(__file__).resolve().parents[1] / "formulacode_assets"
# The registry grammar (OCI distribution spec) for a repository path and a tag.
PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*")
TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


def test_single_layout_puts_every_project_in_one_repository():
    name = image_name("Sample-Org", "FastMath", SHA, namespace="formulacode", layout="single")
    assert name.reference == f"formulacode/all:sample-org-fastmath-{SHA}--final"
    assert name.registry_host is None and name.path == "formulacode/all"


def test_mirror_layout_has_one_repository_per_project():
    name = image_name("Sample-Org", "FastMath", SHA, namespace="127.0.0.1:5000/fc", layout="mirror")
    assert name.reference == f"127.0.0.1:5000/fc/sample-org-fastmath:{SHA}-final"
    assert name.registry_host == "127.0.0.1:5000" and name.path == "fc/sample-org-fastmath"


def test_unsafe_characters_are_replaced_and_names_lowercased():
    name = image_name_for("Weird.Owner/my+repo@v2", SHA.upper(), namespace="Formula Code/Sub", layout="mirror")
    (component,) = [c for c in name.path.split("/") if "repo" in c]
    assert name.reference.lower() == name.reference
    assert component == "weird.owner-my-repo-v2"
    assert all(PATH_COMPONENT.fullmatch(c) for c in name.path.split("/")), name.path
    assert TAG.fullmatch(name.tag)


def test_long_tags_are_shortened_with_a_hash_and_stay_distinct():
    long_repo = "x" * 200
    a = image_name("owner", long_repo, SHA, namespace="ns")
    b = image_name("owner", long_repo + "y", SHA, namespace="ns")
    assert len(a.tag) <= MAX_TAG and len(b.tag) <= MAX_TAG
    assert a.tag != b.tag and TAG.fullmatch(a.tag)
    assert image_name("owner", long_repo, SHA, namespace="ns") == a  # deterministic


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="layout"):
        image_name("o", "r", SHA, namespace="ns", layout="flat")
    with pytest.raises(ValueError, match="namespace"):
        image_name("o", "r", SHA, namespace="")
    with pytest.raises(ValueError, match="base sha"):
        image_name("o", "r", "", namespace="ns")


def test_no_other_module_spells_an_image_tag():
    """The '-final' suffix is written in exactly one place: every name comes from image_name()."""
    spelled = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "image_names.py":
            continue
        if re.search(r"""["'][^"'\n]*-final\b""", path.read_text()):
            spelled.append(str(path.relative_to(PACKAGE)))
    assert spelled == []

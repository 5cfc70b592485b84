import pytest

from driftwarden.drift.propertypath import (
    covers,
    format_path,
    glob,
    is_missing,
    overlaps,
    parse_path,
    resolve,
)


@pytest.mark.parametrize(
    ("segments", "text"),
    [
        (["content"], "content"),
        (["tags", "env"], "tags.env"),
        (["ingress", 0, "cidrBlocks", 1], "ingress[0].cidrBlocks[1]"),
        (["key.with.dots"], '["key.with.dots"]'),
        (["tags", "kubernetes.io/cluster"], 'tags["kubernetes.io/cluster"]'),
        (["a", 'say "hi"'], 'a["say \\"hi\\""]'),
        (["my-key", "b"], '["my-key"].b'),
    ],
)
def test_paths_format_like_pulumi_and_parse_back(segments: list[str | int], text: str) -> None:
    assert format_path(segments) == text
    assert parse_path(text) == segments


def test_resolve_walks_maps_and_lists() -> None:
    value = {"ingress": [{"cidrBlocks": ["10.0.0.0/8", "0.0.0.0/0"]}], "key.with.dots": 1}
    assert resolve(value, parse_path("ingress[0].cidrBlocks[1]")) == "0.0.0.0/0"
    assert resolve(value, parse_path('["key.with.dots"]')) == 1
    assert is_missing(resolve(value, parse_path("ingress[3]")))
    assert is_missing(resolve(value, parse_path("tags.env")))


def test_unbalanced_bracket_is_rejected() -> None:
    with pytest.raises(ValueError, match="unbalanced"):
        parse_path("ingress[0")


@pytest.mark.parametrize(
    ("pattern", "path", "matched"),
    [
        ("rules[*].resources[*]", "rules[0].resources[1]", True),
        ("rules[0]", "rules[0]", True),
        ("rules[0]", "rules0", False),  # brackets are literal, not a character class
        ("tags.owner", "tags.owner", True),
        ("tags.owner", "tags.ownership", False),
        ("user*", "username", True),
    ],
)
def test_globs_treat_brackets_literally(pattern: str, path: str, matched: bool) -> None:
    assert bool(glob(pattern).match(path)) is matched


@pytest.mark.parametrize(
    ("pattern", "path", "covered"),
    [
        ("metadata.managedFields", "metadata.managedFields", True),
        ("metadata.managedFields", "metadata.managedFields[0].time", True),
        ("metadata.managedFields", "metadata.managedFieldsX", False),
        ("status", "status.conditions[0].type", True),
        ("status", "spec.status", False),
        ('metadata.annotations["a.b/c"]', 'metadata.annotations["a.b/c"]', True),
        ('metadata.annotations["a.b/c"]', 'metadata.annotations["a.b/d"]', False),
        ("tags", "tags.env", True),
    ],
)
def test_subtree_globs_cover_what_lies_below(pattern: str, path: str, covered: bool) -> None:
    assert covers([pattern], path) is covered


def test_paths_overlap_when_one_lies_under_the_other() -> None:
    assert overlaps(parse_path("spec.replicas"), parse_path("spec.replicas"))
    assert overlaps(parse_path("data"), parse_path("data.LOG_LEVEL"))
    assert overlaps(parse_path("rules[0].verbs[1]"), parse_path("rules[0]"))
    assert not overlaps(parse_path("rules[0].resources[1]"), parse_path("rules[0].verbs[1]"))

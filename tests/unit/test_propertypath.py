import pytest

from driftwarden.drift.propertypath import format_path, is_missing, parse_path, resolve


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

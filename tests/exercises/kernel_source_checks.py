"""What the kernel exercises' graders share: the kernel sources do their work themselves, with no ATen op that
would do it for them."""
from torchkata.pipeline.catalog import ROOT


def assert_no_aten_op(sources: list[str], forbidden: list[str]) -> None:
    """No source of `sources` (paths from the repository's root) contains any of the `forbidden` calls."""
    for source in sources:
        text = (ROOT / source).read_text()
        for op in forbidden:
            assert op not in text, f"{source} uses {op}"

"""A finding: one sentence block selected by code from verdicts and exact values."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Finding", "RELATIONS", "RELATION_LABELS"]

#: how a finding relates to the paper, in the order the findings page lists them
RELATIONS: dict[str, str] = {
    "disagrees": "Where the data differ from the paper's statements",
    "outside": "Where the networks lie outside the theorems' hypotheses",
    "undecided": "Where these data do not decide",
    "agrees": "Where the data agree with the paper",
    "note": "About the networks used here",
}

#: the short label of each relation, used in the index
RELATION_LABELS: dict[str, str] = {
    "disagrees": "differs from the paper",
    "outside": "outside the hypotheses",
    "undecided": "undecided",
    "agrees": "agrees with the paper",
    "note": "note",
}


@dataclass(frozen=True)
class Finding:
    """One finding of the report.

    Parameters
    ----------
    key : str
        Stable identifier of the selector that produced it (e.g. ``'strided-symmetry'``).
    page : str
        Slug of the report page that holds its tables (``'lemmas'``, ...).
    relation : str
        One of :data:`RELATIONS`, selected from the data like the text.
    title : str
        A short bold title.
    text : str
        The sentences, every one chosen from computed values.

    Examples
    --------
    >>> f = Finding("lemma8", "lemmas", "agrees", "Lemma 8 holds", "The walk probabilities sum to 1 for every network.")
    >>> f.markdown()
    '**Lemma 8 holds.** The walk probabilities sum to 1 for every network. ([lemmas](lemmas.md))'
    >>> Finding("x", "lemmas", "maybe", "T", "text")
    Traceback (most recent call last):
        ...
    ValueError: finding 'x': unknown relation 'maybe'; expected one of disagrees, outside, undecided, agrees, note
    """

    key: str
    page: str
    relation: str
    title: str
    text: str

    def __post_init__(self) -> None:
        if self.relation not in RELATIONS:
            raise ValueError(f"finding {self.key!r}: unknown relation {self.relation!r}; expected one of "
                             f"{', '.join(RELATIONS)}")
        if not self.text.strip():
            raise ValueError(f"finding {self.key!r} has no text")

    def markdown(self, link: bool = True) -> str:
        """``**Title.** text`` with a link to its page when ``link``."""
        tail = f" ([{self.page}]({self.page}.md))" if link else ""
        return f"**{self.title}.** {self.text}{tail}"

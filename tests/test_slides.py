"""The slide decks build offline: no script or style sheet comes from the network."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))

import slides  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("npm") is None, reason="npm fetches reveal.js for the decks")


@pytest.fixture(scope="module")
def decks():
    return slides.build_decks()


def test_one_deck_per_notebook(decks):
    notebooks = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert [deck.name for deck in decks] == [f"{nb.stem}.slides.html" for nb in notebooks]


def test_decks_load_nothing_remote(decks):
    for deck in decks:
        html = deck.read_text()
        loaded = re.findall(r"""src=["'](https?://[^"']+)""", html)
        loaded += re.findall(r"""<link[^>]+href=["'](https?://[^"']+)""", html)
        assert loaded == [], f"{deck.name} loads {loaded} from the network"
        for local in re.findall(r"""(?:src|href)=["'](reveal\.js/[^"']+)""", html):
            assert (deck.parent / local).exists(), f"{deck.name} needs {local}, which is missing"


def test_decks_show_numbered_slide_headings(decks):
    text = " ".join(deck.read_text() for deck in decks)
    for number in range(1, 26):
        assert re.search(rf"<h2[^>]*>{number}\. ", text), f"no slide heading for slide {number} in the decks"


def test_decks_find_their_pictures(decks):
    for deck in decks:
        for picture in re.findall(r"""<img[^>]+src=["'](images/[^"']+)""", deck.read_text()):
            assert (deck.parent / picture).exists(), f"{deck.name} shows {picture}, which is missing"

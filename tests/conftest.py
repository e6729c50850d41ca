import csv
import sys
from pathlib import Path

import pytest
import torch

# Let tests import the shared oracle helpers (tests/oracle.py).
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True)
def _seeded():
    # Every test draws the same random numbers on every run: a failure reproduces.
    torch.manual_seed(0)


@pytest.fixture
def two_threads():
    """torch on two threads for one test, whatever an earlier module set (some set one at import):
    engine="auto" chooses by torch's thread count."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(threads)


# -- the tour's tiny models, shared by test_tour.py and test_explain.py -----------------------


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> dict[str, Path]:
    """Real reviews and real Shakespeare, cut small so the tour's models train in seconds."""
    from gated.data.reviews import load_food_reviews
    from gated.data.text import load_shakespeare

    folder = tmp_path_factory.mktemp("tour-data")
    reviews = load_food_reviews("train")
    with open(folder / "reviews.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        for text, label in list(zip(reviews.texts, reviews.labels))[:200]:
            writer.writerow([text, reviews.label_names[label]])
    (folder / "plays.txt").write_text(load_shakespeare()[:20_000], encoding="utf-8")
    return {"sentiment": folder / "reviews.csv", "charlm": folder / "plays.txt"}


@pytest.fixture(scope="session")
def report(tmp_path_factory, tiny_data) -> Path:
    from gated.tour import run_tour
    from gated.tour.models import TINY

    out = tmp_path_factory.mktemp("tour")
    return run_tour(out, scale=TINY, data=tiny_data, quiet=True)

"""Suite-wide pytest hooks."""


def pytest_collection_modifyitems(items):
    """Tests marked `slow` run first (a stable sort keeps the rest in collection order): with
    `pytest -n 2` a long test collected late would otherwise run alone at the end while the
    other worker idles (a 13-minute suite had a ~2-minute tail of that kind)."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)

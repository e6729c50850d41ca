"""Placeholder while this command is being built; replaced by its owner."""


def add_arguments(parser) -> None:
    """Add this command's arguments to its argparse sub-parser (keep this module's imports light)."""


def run(args) -> int:
    raise ValueError("this command is not built yet")
